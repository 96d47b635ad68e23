"""The application layer: commands over the domain aggregates, and the executors that run an
iteration's runs. It uses infra (store, runners, model clients) and is used by api."""
