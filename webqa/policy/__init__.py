"""Not yet built: see the project's issues."""
