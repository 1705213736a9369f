"""The built-in plugins: zoo's own features, registered through the public hooks."""
