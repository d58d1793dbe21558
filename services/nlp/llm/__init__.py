"""A local OpenAI-compatible LLM for the ``openai`` backend: ``transformers serve`` on a small
model, in its own environment (``.venv-llm``, see ``setup_env.sh``), never in the service's."""
