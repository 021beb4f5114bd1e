"""Projects: the namespace and security boundary."""
