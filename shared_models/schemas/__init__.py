"""Pydantic wire schemas, one module per concept (`XCreate / XUpdate / XPublic / XsPublic`)."""
