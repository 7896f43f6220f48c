"""The LLM rationale: facts of an assessment, the prompt, the client, the verifier and the
deterministic stand-in (issue 16; DESIGN.md section 10)."""
