"""The pipeline's shared vocabulary: the antihypertensive drug-class ids and their doses
(:mod:`vocabulary.drug_classes`) and the one feature table that the FHIR mapping produces and
the model consumes (:mod:`vocabulary.feature_table`, hashed into the model's manifest).

Every other package speaks in these terms, so this one sits at the bottom of the layers and
imports nothing from the others (``uv run lint-imports`` checks it).
"""
