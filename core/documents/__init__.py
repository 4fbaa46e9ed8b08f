"""Invoices and packing slips: what they say (``content``) and how they are laid out as PDF
(``pdf``, with the Jinja2 templates in ``templates/``)."""
