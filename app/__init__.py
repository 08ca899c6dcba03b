"""The violation-calls FastAPI service: settings, schemas, database, trips, prompts, routes."""
