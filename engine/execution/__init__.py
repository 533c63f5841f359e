"""Running a playbook: the executor, its sinks, batches, and the explanation of one customer."""
