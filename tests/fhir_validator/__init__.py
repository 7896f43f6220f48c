"""The HL7 R4 validator the tests run on every FHIR resource the service emits (validate.js)."""
