#!/usr/bin/env node
// Smoke test of the protocol contracts on a real anvil node (happy path of every contract,
// plus a few decoded reverts). Uses only Node's built-in fetch and JSON-RPC: transactions are
// sent with eth_sendTransaction from anvil's unlocked dev accounts, keccak256 comes from the
// node's web3_sha3, and the ABI coder below is a minimal one for the types the contracts use.
//
// How to run (from the repository root):
//   scripts/setup && scripts/build-contracts
//   .tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --network optimism --port 8599 &
//   node scripts/smoke-contracts.js            # or RPC_URL=http://127.0.0.1:8545 node ...
//   kill %1
// Exits non-zero with the decoded revert reason on the first unexpected failure.
'use strict';
const fs = require('fs');
const path = require('path');

const RPC = process.env.RPC_URL || 'http://127.0.0.1:8599';
const ART = path.resolve(__dirname, '..', 'chain', 'artifacts');
const E18 = 10n ** 18n;

let rpcId = 0;
async function rpc(method, params = []) {
  const res = await fetch(RPC, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }),
  });
  const j = await res.json();
  if (j.error) {
    const e = new Error(`${method}: ${j.error.message}`);
    e.rpc = j.error;
    throw e;
  }
  return j.result;
}

// ------------------------------------------------------------------ keccak + ABI coder
const strip = (h) => (h.startsWith('0x') ? h.slice(2) : h);
const hexOfUtf8 = (s) => '0x' + Buffer.from(s, 'utf8').toString('hex');
async function keccak(hex) {
  return rpc('web3_sha3', [hex]);
}
const word = (n) => {
  let v = BigInt(n);
  if (v < 0n) v = (1n << 256n) + v;
  return v.toString(16).padStart(64, '0');
};
const padRight = (hex) => hex + '0'.repeat((64 - (hex.length % 64)) % 64);

function canonical(t) {
  if (t.type.startsWith('tuple')) throw new Error('tuples not supported by smoke coder');
  return t.type;
}
const isDynamic = (type) => type === 'bytes' || type === 'string' || type.endsWith('[]');

function encodeOne(type, v) {
  if (type.endsWith('[]')) {
    const inner = type.slice(0, -2);
    return word(v.length) + encodeArgs(v.map(() => inner), v);
  }
  if (type === 'address') return word(BigInt(v));
  if (type === 'bool') return word(v ? 1 : 0);
  if (type.startsWith('uint') || type.startsWith('int')) return word(v);
  if (/^bytes\d+$/.test(type)) return strip(v).padEnd(64, '0');
  if (type === 'bytes' || type === 'string') {
    const h = type === 'string' ? Buffer.from(v, 'utf8').toString('hex') : strip(v);
    return word(h.length / 2) + padRight(h);
  }
  throw new Error('unsupported type ' + type);
}
function encodeArgs(types, values) {
  let head = '';
  let tail = '';
  const headLen = types.length * 32;
  for (let i = 0; i < types.length; i++) {
    if (isDynamic(types[i])) {
      head += word(headLen + tail.length / 2);
      tail += encodeOne(types[i], values[i]);
    } else head += encodeOne(types[i], values[i]);
  }
  return head + tail;
}
function decodeWords(types, hex) {
  const h = strip(hex);
  const out = [];
  for (let i = 0; i < types.length; i++) {
    const w = h.slice(i * 64, (i + 1) * 64);
    const t = types[i];
    if (isDynamic(t)) {
      const off = Number(BigInt('0x' + w)) * 2;
      const len = Number(BigInt('0x' + h.slice(off, off + 64)));
      if (t.endsWith('[]')) out.push(decodeWords(Array(len).fill(t.slice(0, -2)), h.slice(off + 64)));
      else out.push('0x' + h.slice(off + 64, off + 64 + len * 2));
    } else if (t === 'address') out.push('0x' + w.slice(24));
    else if (t === 'bool') out.push(BigInt('0x' + w) !== 0n);
    else if (/^bytes\d+$/.test(t)) out.push('0x' + w);
    else if (t.startsWith('uint')) out.push(BigInt('0x' + w));
    else if (t.startsWith('int')) {
      const v = BigInt('0x' + w);
      out.push(v >= 1n << 255n ? v - (1n << 256n) : v);
    } else out.push('0x' + w);
  }
  return out;
}

// ------------------------------------------------------------------ contracts
const errorTable = new Map(); // selector -> {name, types}
async function loadArtifact(name) {
  const art = JSON.parse(fs.readFileSync(path.join(ART, name + '.json'), 'utf8'));
  const fns = {};
  const events = {};
  for (const item of art.abi) {
    if (item.type === 'function' || item.type === 'error' || item.type === 'event') {
      const types = item.inputs.map(canonical);
      const sig = `${item.name}(${types.join(',')})`;
      const hash = await keccak(hexOfUtf8(sig));
      if (item.type === 'function') fns[item.name] = { sel: hash.slice(0, 10), types, outs: item.outputs.map(canonical), item };
      else if (item.type === 'error') errorTable.set(hash.slice(0, 10), { name: item.name, types });
      else events[hash] = { name: item.name, item };
    }
  }
  return { name, art, fns, events };
}

function decodeRevert(data) {
  if (!data || data === '0x') return 'reverted without data';
  const sel = data.slice(0, 10);
  if (sel === '0x08c379a0') return `Error(${JSON.stringify(Buffer.from(strip(decodeWords(['string'], data.slice(10))[0]), 'hex').toString())})`;
  const e = errorTable.get(sel);
  if (!e) return `unknown revert ${data}`;
  const args = decodeWords(e.types, data.slice(10)).map((v) => (typeof v === 'bigint' ? v.toString() : JSON.stringify(v)));
  return `${e.name}(${args.join(', ')})`;
}
function revertDataOf(err) {
  const d = err.rpc && err.rpc.data;
  if (typeof d === 'string') return d;
  if (d && typeof d === 'object') return d.data || d.result || undefined;
  const m = /(0x[0-9a-fA-F]{8,})/.exec(err.message);
  return m ? m[1] : undefined;
}

async function receipt(hash) {
  for (let i = 0; i < 200; i++) {
    const rc = await rpc('eth_getTransactionReceipt', [hash]);
    if (rc) return rc;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no receipt for ${hash}`);
}

const summary = [];
async function deploy(c, from, args) {
  const ctor = c.art.abi.find((x) => x.type === 'constructor');
  const types = ctor ? ctor.inputs.map(canonical) : [];
  const data = c.art.bytecode + encodeArgs(types, args);
  const hash = await rpc('eth_sendTransaction', [{ from, data, gas: '0x1c9c380' }]);
  const rc = await receipt(hash);
  if (rc.status !== '0x1') throw new Error(`deploy ${c.name} failed`);
  c.address = rc.contractAddress;
  summary.push(`deployed ${c.name.padEnd(18)} at ${c.address} (gas ${BigInt(rc.gasUsed)})`);
  return c;
}

function calldata(c, fn, args) {
  const f = c.fns[fn];
  if (!f) throw new Error(`${c.name} has no function ${fn}`);
  if (f.types.length !== args.length) throw new Error(`${c.name}.${fn}: expected ${f.types.length} args`);
  return f.sel + encodeArgs(f.types, args);
}

async function send(c, fn, args, from) {
  const tx = { from, to: c.address, data: calldata(c, fn, args) };
  let hash;
  try {
    // Simulate first so a revert is reported with its decoded custom error (anvil may otherwise
    // mine the failing transaction and only report status 0).
    await rpc('eth_call', [tx, 'latest']);
    hash = await rpc('eth_sendTransaction', [tx]);
  } catch (err) {
    const e = new Error(`${c.name}.${fn} from ${from} reverted: ${decodeRevert(revertDataOf(err))}`);
    e.revert = decodeRevert(revertDataOf(err));
    throw e;
  }
  const rc = await receipt(hash);
  if (rc.status !== '0x1') throw new Error(`${c.name}.${fn}: tx ${hash} failed`);
  rc.events = rc.logs.map((l) => {
    const owner = all.find((x) => x.address && x.address.toLowerCase() === l.address.toLowerCase());
    const ev = owner && owner.events[l.topics[0]];
    return ev ? `${owner.name}.${ev.name}` : `?${l.address}`;
  });
  return rc;
}

async function expectRevert(c, fn, args, from, errName) {
  try {
    await send(c, fn, args, from);
  } catch (e) {
    if (e.revert && e.revert.startsWith(errName + '(')) {
      summary.push(`expected revert  ${c.name}.${fn} -> ${e.revert}`);
      return;
    }
    throw e;
  }
  throw new Error(`${c.name}.${fn} should have reverted with ${errName}`);
}

async function call(c, fn, args = []) {
  const out = await rpc('eth_call', [{ to: c.address, data: calldata(c, fn, args) }, 'latest']);
  const r = decodeWords(c.fns[fn].outs, out);
  return r.length === 1 ? r[0] : r;
}

function assertEq(label, got, want) {
  if (typeof got === 'string' && typeof want === 'string') {
    got = got.toLowerCase();
    want = want.toLowerCase();
  }
  if (got !== want) throw new Error(`${label}: got ${got}, want ${want}`);
}

let all = [];
const fmt = (v) => `${v / E18}.${(v % E18).toString().padStart(18, '0').replace(/0+$/, '') || '0'}`;

async function main() {
  const chainId = BigInt(await rpc('eth_chainId'));
  const client = await rpc('web3_clientVersion');
  const acc = await rpc('eth_accounts');
  if (acc.length < 10) throw new Error('need 10 unlocked accounts');
  const [admin, treasury, alice, bob, rev1, rev2, modelOwner, payer, staker, grantee] = acc;
  summary.push(`node ${client}, chain id ${chainId}`);

  const names = ['OpenToken', 'DatanetRegistry', 'ModelRegistry', 'AttributionRewards', 'StakingGovernance', 'InferenceMarket', 'GrantVault'];
  const C = {};
  for (const n of names) C[n] = await loadArtifact(n);
  all = Object.values(C);
  const { OpenToken: tok, DatanetRegistry: dr, ModelRegistry: mr, AttributionRewards: ar, StakingGovernance: sg, InferenceMarket: im, GrantVault: gv } = C;

  // ---- deploy in the Rust side's order
  await deploy(tok, admin, [admin]);
  await deploy(dr, admin, [tok.address, admin, treasury, 100n * E18, 2000, 86400, 2]);
  await deploy(mr, admin, [admin]);
  await deploy(ar, admin, [tok.address, admin]);
  await deploy(sg, admin, [tok.address, admin, 1000n * E18, 3 * 86400, 86400, 1000]);
  await deploy(im, admin, [tok.address, mr.address, ar.address, sg.address, treasury, admin, 4000, 3000, 2000, 1000]);
  await deploy(gv, admin, [tok.address, admin, [rev1, rev2, modelOwner], 2, 50_000_000n]);

  // ---- wiring
  await send(ar, 'initMarket', [im.address], admin);
  await send(sg, 'initMarket', [im.address], admin);
  await send(sg, 'initTargets', [[dr.address, im.address, ar.address, gv.address, mr.address]], admin);
  for (const c of [dr, mr, ar, im, gv]) await send(c, 'initGovernance', [sg.address], admin);
  await expectRevert(dr, 'initGovernance', [admin], admin, 'GovernanceAlreadySet');
  summary.push('wired market, targets and governance');

  // ---- OpenToken
  assertEq('totalSupply', await call(tok, 'totalSupply'), 1_000_000_000n * E18);
  assertEq('genesis balance', await call(tok, 'balanceOf', [admin]), 1_000_000_000n * E18);
  const MAX = (1n << 256n) - 1n;
  for (const [who, amt] of [[alice, 10_000n], [bob, 10_000n], [payer, 100_000n], [staker, 50_000n], [modelOwner, 5_000n]]) {
    await send(tok, 'transfer', [who, amt * E18], admin);
  }
  await expectRevert(tok, 'transfer', [admin, 20_000n * E18], alice, 'InsufficientBalance');
  await send(tok, 'approve', [bob, MAX], alice);
  await send(tok, 'transferFrom', [alice, bob, 1n * E18], bob);
  assertEq('infinite allowance kept', await call(tok, 'allowance', [alice, bob]), MAX);
  await send(tok, 'approve', [bob, 5n], alice);
  await expectRevert(tok, 'transferFrom', [alice, bob, 6n], bob, 'InsufficientAllowance');
  await send(tok, 'approve', [bob, 0n], alice);
  summary.push('OpenToken: supply, transfer, infinite approval, decoded errors ok');

  // ---- DatanetRegistry
  await send(dr, 'createDatanet', ['finance-qa', 'finance'], rev1);
  const dn = await call(dr, 'datanetCount');
  await send(dr, 'addReviewer', [dn, rev1], rev1);
  await send(dr, 'addReviewer', [dn, rev2], rev1);
  await expectRevert(dr, 'addReviewer', [dn, bob], bob, 'NotDatanetOwner');
  for (const w of [alice, bob, payer, staker, modelOwner]) {
    for (const c of [dr, im, sg, gv]) await send(tok, 'approve', [c.address, MAX], w);
  }
  await send(tok, 'approve', [gv.address, MAX], admin);
  const h1 = await keccak(hexOfUtf8('alice-data-1'));
  const h2 = await keccak(hexOfUtf8('bob-data-1'));
  const r1 = await send(dr, 'contribute', [dn, h1, 500, 200n * E18], alice);
  const c1 = await call(dr, 'contributionCount');
  await send(dr, 'contribute', [dn, h2, 300, 150n * E18], bob);
  const c2 = await call(dr, 'contributionCount');
  await expectRevert(dr, 'contribute', [dn, h1, 1, 200n * E18], bob, 'DuplicateContent');
  await expectRevert(dr, 'contribute', [dn, await keccak('0x01'), 1, 1n * E18], bob, 'StakeTooLow');
  await send(dr, 'review', [c1, true], rev1);
  await expectRevert(dr, 'review', [c1, true], rev1, 'AlreadyReviewed');
  const acc1 = await send(dr, 'review', [c1, true], rev2);
  assertEq('c1 accepted', await call(dr, 'isAccepted', [c1]), true);
  await send(dr, 'review', [c2, false], rev1);
  const tBefore = await call(tok, 'balanceOf', [treasury]);
  const rej = await send(dr, 'review', [c2, false], rev2);
  const slashed = (await call(tok, 'balanceOf', [treasury])) - tBefore;
  assertEq('slash 20% of 150', slashed, 30n * E18);
  assertEq('escrow invariant', await call(dr, 'totalEscrowed'), await call(tok, 'balanceOf', [dr.address]));
  await expectRevert(dr, 'withdrawStake', [c2], bob, 'StillLocked');
  summary.push(`DatanetRegistry: contribute (${r1.events.join(',')}), accept (${acc1.events.join(',')}), reject+slash ${fmt(slashed)} OPEN (${rej.events.join(',')})`);

  // ---- ModelRegistry
  const adapter = await keccak(hexOfUtf8('adapter-finance-v1'));
  const base = await keccak(hexOfUtf8('base-model'));
  await send(mr, 'registerModel', [base, adapter, [dn], 0, 2n * E18], modelOwner);
  const m1 = await call(mr, 'modelCount');
  await expectRevert(mr, 'registerModel', [base, adapter, [dn], 0, 1n], alice, 'DuplicateAdapter');
  assertEq('ownerOf', await call(mr, 'ownerOf', [m1]), modelOwner);
  assertEq('datanetsOf', (await call(mr, 'datanetsOf', [m1]))[0], dn);
  await send(mr, 'setPrice', [m1, 1n * E18], modelOwner);
  assertEq('priceOf', await call(mr, 'priceOf', [m1]), 1n * E18);
  summary.push(`ModelRegistry: model ${m1} registered, price set to 1 OPEN`);

  // ---- StakingGovernance stake, then InferenceMarket pay
  await send(sg, 'stake', [40_000n * E18], staker);
  await send(sg, 'stake', [1_000n * E18], alice);
  await expectRevert(im, 'payInference', [m1, 100, 99n * E18], payer, 'FeeExceedsMax');
  const ownerBefore = await call(tok, 'balanceOf', [modelOwner]);
  const pay = await send(im, 'payInference', [m1, 100, 100n * E18], payer);
  assertEq('pool 40%', await call(ar, 'poolOf', [m1]), 40n * E18);
  assertEq('owner 30%', (await call(tok, 'balanceOf', [modelOwner])) - ownerBefore, 30n * E18);
  const pendStaker = await call(sg, 'pendingRewards', [staker]);
  summary.push(`InferenceMarket: paid 100 inferences = 100 OPEN (${pay.events.join(',')}); staker pending ${fmt(pendStaker)}`);

  // ---- AttributionRewards push + merkle
  const push = await send(ar, 'settlePush', [m1, 1, [alice, bob], [10n * E18, 5n * E18]], admin);
  assertEq('pool after push', await call(ar, 'poolOf', [m1]), 25n * E18);
  const leaf = async (a, amt) => keccak('0x' + strip(await keccak('0x' + encodeArgs(['address', 'uint256'], [a, amt]))));
  const la = await leaf(alice, 12n * E18);
  const lb = await leaf(bob, 8n * E18);
  const [lo, hi] = BigInt(la) < BigInt(lb) ? [la, lb] : [lb, la];
  const root = await keccak('0x' + strip(lo) + strip(hi));
  await send(ar, 'postRoot', [m1, 2, root, 20n * E18], admin);
  await expectRevert(ar, 'postRoot', [m1, 2, root, 1n], admin, 'RootAlreadyPosted');
  const aliceBefore = await call(tok, 'balanceOf', [alice]);
  await send(ar, 'claim', [m1, 2, alice, 12n * E18, [lb]], bob);
  assertEq('alice claim', (await call(tok, 'balanceOf', [alice])) - aliceBefore, 12n * E18);
  await expectRevert(ar, 'claim', [m1, 2, alice, 12n * E18, [lb]], alice, 'DoubleClaim');
  await expectRevert(ar, 'claim', [m1, 2, bob, 9n * E18, [la]], bob, 'InvalidProof');
  await send(ar, 'claim', [m1, 2, bob, 8n * E18, [la]], bob);
  assertEq('isClaimed', await call(ar, 'isClaimed', [m1, 2, bob]), true);
  assertEq('reserved left', await call(ar, 'reservedOf', [m1, 2]), 0n);
  assertEq(
    'rewards invariant',
    (await call(ar, 'totalPooled')) + (await call(ar, 'totalReserved')),
    await call(tok, 'balanceOf', [ar.address])
  );
  summary.push(`AttributionRewards: push (${push.events.join(',')}), merkle root + 2 claims ok`);

  // ---- slashHarmful by attributor (admin)
  const harm = await send(dr, 'slashHarmful', [c1, await keccak(hexOfUtf8('evidence'))], admin);
  await expectRevert(dr, 'slashHarmful', [c1, h1], admin, 'NotAccepted');
  summary.push(`DatanetRegistry: slashHarmful (${harm.events.join(',')})`);

  // ---- governance: change fee split
  const newSplit = calldata(im, 'setFeeSplit', [5000, 2500, 1500, 1000]);
  await expectRevert(im, 'setFeeSplit', [5000, 2500, 1500, 1000], admin, 'NotGovernance');
  await expectRevert(sg, 'propose', [im.address, newSplit, 'x'], bob, 'BelowProposalThreshold');
  await send(sg, 'propose', [im.address, newSplit, 'Raise contributor share to 50%'], staker);
  const pid = await call(sg, 'proposalCount');
  await send(sg, 'vote', [pid, true], staker);
  await send(sg, 'vote', [pid, false], alice);
  await expectRevert(sg, 'vote', [pid, true], staker, 'AlreadyVoted');
  await expectRevert(sg, 'unstake', [1n], staker, 'StakeLocked');
  assertEq('state Active', await call(sg, 'state', [pid]), 1n);
  await expectRevert(sg, 'queue', [pid], staker, 'ProposalNotSucceeded');
  await rpc('evm_increaseTime', [3 * 86400 + 1]);
  await rpc('evm_mine', []);
  assertEq('state Pending(passed)', await call(sg, 'state', [pid]), 0n);
  await send(sg, 'queue', [pid], payer);
  await expectRevert(sg, 'execute', [pid], payer, 'TimelockNotElapsed');
  await rpc('evm_increaseTime', [86400]);
  await rpc('evm_mine', []);
  const ex = await send(sg, 'execute', [pid], payer);
  assertEq('state Executed', await call(sg, 'state', [pid]), 4n);
  const split = await call(im, 'feeSplit');
  assertEq('new split', split.join('/'), '5000/2500/1500/1000');
  await send(im, 'payInference', [m1, 10, 10n * E18], payer);
  assertEq('pool 40-15-20 + 50% of 10', await call(ar, 'poolOf', [m1]), 10n * E18);
  summary.push(`StakingGovernance: propose/vote/queue/timelock/execute (${ex.events.join(',')}); new split ${split.join('/')} applied`);

  // failing proposal bubbles the inner revert
  await send(sg, 'propose', [im.address, calldata(im, 'setFeeSplit', [1, 1, 1, 1]), 'bad split'], staker);
  const pid2 = await call(sg, 'proposalCount');
  await send(sg, 'vote', [pid2, true], staker);
  await rpc('evm_increaseTime', [3 * 86400 + 1]);
  await rpc('evm_mine', []);
  await send(sg, 'queue', [pid2], staker);
  await rpc('evm_increaseTime', [86400]);
  await rpc('evm_mine', []);
  await expectRevert(sg, 'execute', [pid2], staker, 'InvalidFeeSplit');

  // rewards + unstake
  const claimRc = await send(sg, 'claimRewards', [], staker);
  await send(sg, 'claimRewards', [], alice);
  await send(sg, 'unstake', [40_000n * E18], staker);
  const sgBal = await call(tok, 'balanceOf', [sg.address]);
  assertEq('staking invariant', (await call(sg, 'totalStaked')) + (await call(sg, 'rewardsReserve')), sgBal);
  summary.push(`StakingGovernance: rewards claimed (${claimRc.events.join(',')}), unstaked; dust in reserve ${await call(sg, 'rewardsReserve')} wei, carry ${await call(sg, 'undistributedRewards')} wei`);

  // withdraw stakes after lock
  const aBal = await call(tok, 'balanceOf', [alice]);
  const bBal = await call(tok, 'balanceOf', [bob]);
  await send(dr, 'withdrawStake', [c1], alice);
  await send(dr, 'withdrawStake', [c2], bob);
  assertEq('alice stake back', (await call(tok, 'balanceOf', [alice])) - aBal, 160n * E18);
  assertEq('bob stake back', (await call(tok, 'balanceOf', [bob])) - bBal, 120n * E18);
  await expectRevert(dr, 'withdrawStake', [c1], alice, 'NothingToWithdraw');
  assertEq('escrow empty', await call(dr, 'totalEscrowed'), 0n);
  assertEq('escrow balance', await call(tok, 'balanceOf', [dr.address]), 0n);
  summary.push('DatanetRegistry: stakes withdrawn after lock (alice 160 = 200 - 20% harm slash, bob 120)');

  // ---- GrantVault
  await send(gv, 'deposit', [1_000_000n * E18], admin);
  await expectRevert(gv, 'applyForGrant', [0, 60_000n, 3, h1], grantee, 'AmountOutOfTier');
  await send(gv, 'applyForGrant', [0, 40_000n, 3, h1], grantee);
  const g1 = await call(gv, 'grantCount');
  await send(gv, 'approveGrant', [g1], rev1);
  await expectRevert(gv, 'approveGrant', [g1], rev1, 'AlreadyApproved');
  await send(gv, 'approveGrant', [g1], rev2);
  const expectOpen = (40_000n * E18 * 100_000_000n) / 50_000_000n; // 80,000 OPEN
  assertEq('reserved', await call(gv, 'reserved'), expectOpen);
  await send(gv, 'releaseMilestone', [g1], rev1);
  await send(gv, 'releaseMilestone', [g1], rev1);
  await send(gv, 'releaseMilestone', [g1], rev2);
  assertEq('grantee paid', await call(tok, 'balanceOf', [grantee]), expectOpen);
  await send(gv, 'applyForGrant', [1, 100_000n, 2, h2], grantee);
  const g2 = await call(gv, 'grantCount');
  await send(gv, 'approveGrant', [g2], rev1);
  await send(gv, 'approveGrant', [g2], modelOwner);
  await send(gv, 'releaseMilestone', [g2], rev1);
  const fail = await send(gv, 'failGrant', [g2], rev2);
  assertEq('vault invariant', (await call(gv, 'available')) + (await call(gv, 'reserved')), await call(tok, 'balanceOf', [gv.address]));
  assertEq('reserved zero', await call(gv, 'reserved'), 0n);
  summary.push(`GrantVault: deposit, grant ${g1} completed (${fmt(expectOpen)} OPEN in 3 tranches), grant ${g2} failed (${fail.events.join(',')})`);

  // total supply conserved across all holders
  let sum = 0n;
  for (const a of [...acc, ...all.map((c) => c.address)]) sum += await call(tok, 'balanceOf', [a]);
  assertEq('supply conserved', sum, 1_000_000_000n * E18);
  summary.push('supply conserved: sum of all balances == 1,000,000,000 OPEN');

  for (const s of summary) console.log(s);
  console.log('smoke-contracts: OK');
}

main().catch((e) => {
  for (const s of summary) console.log(s);
  console.error('smoke-contracts: FAILED: ' + (e.stack || e.message));
  process.exit(1);
});
