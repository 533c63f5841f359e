"""The long-running scheduler: slots, reload, housekeeping, its clock."""
