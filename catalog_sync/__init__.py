"""catalog-sync: keep the users of a LiteLLM proxy in line with the people in a Backstage catalog."""

__version__ = "0.1.0"
