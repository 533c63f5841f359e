"""The customer store: table definitions, connections, the demo data generator."""
