"""Auth: users, API tokens, project roles, the one authorization check, the audit log."""
