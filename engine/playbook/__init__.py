"""The typed playbook: model, loading and validation, the JSON Schema."""
