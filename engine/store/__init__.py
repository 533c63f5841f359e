"""The customer store: table definitions, connections, CSV import, introspection of a bank's
database, and the daemons' run claims and leases."""
