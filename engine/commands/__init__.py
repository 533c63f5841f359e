"""Command-line commands, one module per area; ``engine.cli`` assembles them."""
