"""The YAML configuration: its schema (``schema``), the value parsers (``parsers``) and the
reader that remembers where every key came from (``yamlsource``)."""
