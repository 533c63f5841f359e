"""Messages from templates: the sandboxed Jinja environment and which fields a template reads."""
