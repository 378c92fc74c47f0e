"""What a person's browser sees: pages, cookies and CSRF protection."""
