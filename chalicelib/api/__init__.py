"""The research desk's JSON API: read-only routes over the store, one module per job.

- `query`: each route's parameters checked; the event filters defined once (API, CLI, OpenAPI);
- `views`: what each route answers, plain functions of the store and the parameters;
- `formats`: the answer as JSON, CSV or Atom, and the one error shape;
- `openapi`: the OpenAPI document, from the models and the filters;
- `routes`: the Chalice Blueprint app.py registers (and `serve` mounts on its own).

Nothing here imports the NLP stack or trafilatura: the API's Lambda stays small and starts fast.
"""
