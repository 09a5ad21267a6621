"""Fine-tuning runtime: recording approved model packages for the deployment path."""
