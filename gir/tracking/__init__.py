"""MLflow: runs, the pyfunc models, the registry's promotion rule, and the one model resolver."""
