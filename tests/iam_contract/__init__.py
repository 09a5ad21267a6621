"""Permissions contract: AWS calls the runtime tests make, checked against the synthesized roles."""
