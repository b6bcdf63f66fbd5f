#!/usr/bin/env node
// Compiles every chain/contracts/**/*.sol with the pinned solc (npm solc-js 0.8.30, from
// .tools/node_modules/solc; install it with scripts/setup) and writes one artifact per
// deployable contract to chain/artifacts/<ContractName>.json in the format alloy's
// `sol!(Name, "path.json")` macro reads.
//
// Usage: node scripts/build-contracts.js           write artifacts
//        node scripts/build-contracts.js --check   compare with committed artifacts, exit 1 if stale
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const SRC_DIR = path.join(ROOT, 'chain', 'contracts');
const OUT_DIR = path.join(ROOT, 'chain', 'artifacts');
const SOLC_DIR = path.join(ROOT, '.tools', 'node_modules', 'solc');
const PINNED = '0.8.30';
const EVM_VERSION = 'prague';

function fail(msg) {
  process.stderr.write(`build-contracts: ${msg}\n`);
  process.exit(1);
}

const check = process.argv.includes('--check');
const unknown = process.argv.slice(2).filter((a) => a !== '--check');
if (unknown.length) fail(`unknown argument(s): ${unknown.join(' ')} (usage: build-contracts [--check])`);

let solc;
try {
  solc = require(SOLC_DIR);
} catch (e) {
  fail(`cannot load solc from ${path.relative(ROOT, SOLC_DIR)}: run scripts/setup (${e.message})`);
}
const fullVersion = solc.version(); // e.g. 0.8.30+commit.73712a01.Emscripten.clang
if (!fullVersion.startsWith(PINNED + '+')) {
  fail(`solc at ${path.relative(ROOT, SOLC_DIR)} is ${fullVersion}, expected ${PINNED}; run scripts/setup`);
}
const compilerId = 'solc ' + fullVersion.replace(/\.Emscripten.*$/, '');

function listSol(dir) {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...listSol(p));
    else if (ent.isFile() && ent.name.endsWith('.sol')) out.push(p);
  }
  return out;
}

const files = listSol(SRC_DIR);
if (files.length === 0) fail(`no .sol files under ${path.relative(ROOT, SRC_DIR)}`);

const sources = {};
for (const f of files) {
  // Source unit names are relative to chain/contracts with forward slashes, so imports like
  // "./interfaces/IERC20.sol" resolve inside the input and no filesystem callback is needed.
  const unit = path.relative(SRC_DIR, f).split(path.sep).join('/');
  sources[unit] = { content: fs.readFileSync(f, 'utf8') };
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: { enabled: true, runs: 200 },
    viaIR: false,
    outputSelection: {
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
    },
  },
};

function findImports(p) {
  return { error: `import "${p}" not found: only files under chain/contracts can be imported` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

const errors = (output.errors || []).filter((e) => e.severity === 'error');
const warnings = (output.errors || []).filter((e) => e.severity !== 'error');

function describe(e) {
  let loc = '';
  if (e.sourceLocation && e.sourceLocation.file) {
    const unit = e.sourceLocation.file;
    const src = sources[unit] ? sources[unit].content : '';
    const line = src.slice(0, Math.max(0, e.sourceLocation.start)).split('\n').length;
    const col = e.sourceLocation.start - src.lastIndexOf('\n', e.sourceLocation.start - 1);
    loc = `chain/contracts/${unit}:${line}:${col}: `;
  }
  return `${loc}${e.severity} ${e.type || ''}: ${e.message}`;
}

for (const w of warnings) process.stderr.write(describe(w) + '\n');
if (errors.length) {
  for (const e of errors) process.stderr.write(describe(e) + '\n');
  if (!check) {
    for (const e of errors) if (e.formattedMessage) process.stderr.write('\n' + e.formattedMessage);
  }
  fail(`compilation failed with ${errors.length} error(s)`);
}

const artifacts = new Map(); // name -> JSON text
for (const unit of Object.keys(output.contracts || {}).sort()) {
  for (const name of Object.keys(output.contracts[unit]).sort()) {
    const c = output.contracts[unit][name];
    const bytecode = c.evm && c.evm.bytecode ? c.evm.bytecode.object : '';
    if (!bytecode) continue; // interface, abstract contract or library without code
    if (artifacts.has(name)) fail(`contract name ${name} is defined twice; artifact names must be unique`);
    const art = {
      contractName: name,
      abi: c.abi,
      bytecode: '0x' + bytecode,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      compiler: compilerId,
      evmVersion: EVM_VERSION,
    };
    artifacts.set(name, JSON.stringify(art, null, 2) + '\n');
  }
}

const rel = (p) => path.relative(ROOT, p);

if (check) {
  const problems = [];
  for (const [name, text] of artifacts) {
    const p = path.join(OUT_DIR, name + '.json');
    if (!fs.existsSync(p)) problems.push(`missing: ${rel(p)}`);
    else if (fs.readFileSync(p, 'utf8') !== text) problems.push(`stale:   ${rel(p)}`);
  }
  if (fs.existsSync(OUT_DIR)) {
    for (const f of fs.readdirSync(OUT_DIR).sort()) {
      if (f.endsWith('.json') && !artifacts.has(f.slice(0, -5))) {
        problems.push(`orphan:  ${rel(path.join(OUT_DIR, f))} (no contract of that name in chain/contracts)`);
      }
    }
  }
  if (problems.length) {
    for (const p of problems) process.stderr.write(`build-contracts: ${p}\n`);
    fail(`${problems.length} artifact(s) out of date; run scripts/build-contracts and commit chain/artifacts`);
  }
  console.log(`build-contracts: ${artifacts.size} artifacts up to date (${compilerId}, evm ${EVM_VERSION})`);
} else {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  let written = 0;
  for (const [name, text] of artifacts) {
    const p = path.join(OUT_DIR, name + '.json');
    if (!fs.existsSync(p) || fs.readFileSync(p, 'utf8') !== text) {
      fs.writeFileSync(p, text);
      written++;
      console.log(`build-contracts: wrote ${rel(p)}`);
    }
  }
  for (const f of fs.readdirSync(OUT_DIR).sort()) {
    if (f.endsWith('.json') && !artifacts.has(f.slice(0, -5))) {
      fs.unlinkSync(path.join(OUT_DIR, f));
      written++;
      console.log(`build-contracts: removed orphan ${rel(path.join(OUT_DIR, f))}`);
    }
  }
  console.log(`build-contracts: ${artifacts.size} artifacts (${written} changed) with ${compilerId}, evm ${EVM_VERSION}`);
}
