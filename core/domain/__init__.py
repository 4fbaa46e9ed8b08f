"""The rules of the business: products and listings, stock, orders, fulfillment, invoices,
buyer data.

Plain functions over a SQLAlchemy session: no trio, no HTTP, no scheduler. The runtime
calls them inside a unit of work; the CLI calls them the same way. Dependencies point
down only: ``products`` → ``orders`` → ``inventory`` → the store.
"""
