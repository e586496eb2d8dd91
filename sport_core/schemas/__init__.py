"""JSON Schemas of the files sport writes that other plugins read (``certificate-v2.schema.json``, …)."""
