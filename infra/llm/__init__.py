"""infra/llm"""
