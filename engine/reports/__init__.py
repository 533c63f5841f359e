"""Reports over runs and previews."""
