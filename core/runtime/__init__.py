"""The long-running process: daemon wiring, scheduler, governor, jobs, integration
runners, plugin loading and the governed HTTP transport.

The runtime decides *when* and *through which plugin*; what a record means for stock and
orders is ``core.domain``'s business. Plugins may import ``core.runtime.http`` (the governed
transport) and nothing else from here.
"""
