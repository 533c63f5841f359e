"""Demo stores and simulated outcomes; only the CLI imports this package."""
