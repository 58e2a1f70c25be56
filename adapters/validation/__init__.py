"""Code validators: syntax, security and compliance rules for Python, JavaScript and TypeScript."""
