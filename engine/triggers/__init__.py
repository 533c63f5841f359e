"""When a playbook fires: cron schedule slots (one implementation) and event trigger models."""
