// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOpenToken} from "./interfaces/IOpenToken.sol";
import {checkChange} from "./Bounds.sol";

/// @title StakingGovernance
/// @notice OPEN staking with a share of inference fees as rewards, and stake-weighted
///         governance: propose an allow-listed call on a registered protocol contract, vote,
///         queue behind a timelock, execute; a guardian may cancel before execution.
/// @dev Staking rewards are streamed: each notified amount (plus what is still streaming) is
///      paid out evenly over `rewardDuration` seconds through an accumulator
///      (accRewardPerShare, 1e18 precision), so a reward goes to stake held over time, not to
///      whoever is staked at the moment of notification. Streamed wei that no stake could
///      take (nobody staked, rounding) are carried into the next notification's stream.
///      Per-account floor rounding can leave a few wei in rewardsReserve that no account can
///      claim. Invariant: token.balanceOf(this) >= totalStaked + rewardsReserve (equal absent
///      direct token donations).
///
///      Votes are weighed by checkpointed stake at the proposal's snapshot (the second before
///      it was proposed), and the quorum is fixed at proposal time from the total stake at
///      that snapshot, so stake moved after a proposal opens changes neither its votes nor
///      its outcome, and voting locks nothing. A proposal must be queued within
///      `queueWindow` after its vote ends and executed within `executionWindow` after its
///      eta, or it expires. Proposals may only make calls on the allow-list of (target,
///      selector) pairs. The guardian (a key the deployment names; governance may replace or
///      remove it) may cancel any proposal that has not been executed: a veto against a
///      captured vote during the timelock. It cannot propose, execute or move funds.
///      Proposal ids start at 1.
contract StakingGovernance {
    enum ProposalState {
        Pending, // voting has ended with a passing result; awaiting queue()
        Active, // voting open
        Defeated, // voting ended without majority or quorum (a tie is a defeat)
        Queued, // queued behind the timelock
        Executed,
        Canceled, // by the guardian, the proposer, or anyone once the proposer fell below threshold
        Expired // not queued within queueWindow, or not executed within executionWindow
    }

    struct Proposal {
        address proposer;
        address target;
        bytes data;
        uint64 snapshot;
        uint64 voteStart;
        uint64 voteEnd;
        uint64 queueDeadline;
        uint64 eta;
        uint64 executeDeadline;
        uint256 quorumVotes;
        uint256 forVotes;
        uint256 againstVotes;
        bool queued;
        bool executed;
        bool canceled;
    }

    /// @dev One point of a stake history: the value from `time` on.
    struct Checkpoint {
        uint64 time;
        uint192 value;
    }

    uint16 public constant MAX_BPS = 10_000;
    uint256 private constant PRECISION = 1e18;
    uint64 public constant MIN_VOTING_PERIOD = 1 hours;
    uint64 public constant MAX_VOTING_PERIOD = 30 days;
    uint64 public constant MAX_TIMELOCK_DELAY = 30 days;
    uint64 public constant MIN_WINDOW = 1 days;
    uint64 public constant MAX_WINDOW = 90 days;
    uint64 public constant MIN_REWARD_DURATION = 1 hours;
    uint64 public constant MAX_REWARD_DURATION = 30 days;
    uint16 public constant MIN_QUORUM_BPS = 1;
    uint256 public constant MAX_PROPOSAL_THRESHOLD = 10_000_000e18;

    IOpenToken public immutable token;
    address public immutable admin;
    address public market;
    address public guardian;
    bool public targetsInitialized;

    uint256 public proposalThreshold;
    uint64 public votingPeriod;
    uint64 public timelockDelay;
    uint64 public queueWindow;
    uint64 public executionWindow;
    uint16 public quorumBps;

    uint256 public totalStaked;
    mapping(address => uint256) public stakeOf;
    mapping(address => Checkpoint[]) private _stakeHistory;
    Checkpoint[] private _totalHistory;

    uint64 public rewardDuration;
    uint64 public rewardPeriodEnd;
    uint64 public rewardUpdatedAt;
    uint256 public rewardRate; // token wei per second, scaled by PRECISION
    uint256 public rewardRemaining; // notified, not yet streamed
    uint256 public accRewardPerShare;
    uint256 public rewardsReserve;
    uint256 public undistributedRewards;
    mapping(address => uint256) public rewardCheckpoint;
    mapping(address => uint256) public owedRewards;

    uint256 public proposalCount;
    mapping(uint256 => Proposal) private _proposals;
    mapping(uint256 => mapping(address => bool)) public hasVoted;
    mapping(address => bool) public isTarget;
    mapping(address => mapping(bytes4 => bool)) public isAllowedCall;

    event MarketInitialized(address indexed market);
    event TargetRegistered(address indexed target);
    event AllowedCallChanged(address indexed target, bytes4 indexed selector, bool allowed);
    event GuardianChanged(address indexed oldGuardian, address indexed newGuardian);
    event Staked(address indexed account, uint256 amount, uint256 newStake);
    event Unstaked(address indexed account, uint256 amount, uint256 newStake);
    event RewardNotified(uint256 amount, uint256 streaming, uint64 periodEnd);
    event RewardClaimed(address indexed account, uint256 amount);
    event ProposalCreated(
        uint256 indexed proposalId,
        address indexed proposer,
        address indexed target,
        bytes data,
        string description,
        uint64 voteStart,
        uint64 voteEnd
    );
    event VoteCast(uint256 indexed proposalId, address indexed voter, bool support, uint256 weight);
    event ProposalQueued(uint256 indexed proposalId, uint64 eta);
    event ProposalExecuted(uint256 indexed proposalId, address indexed target, bytes data);
    event ProposalCanceled(uint256 indexed proposalId, address indexed by);

    error NotAdmin(address caller);
    error NotGovernance(address caller);
    error NotMarket(address caller);
    error MarketAlreadySet();
    error TargetsAlreadySet();
    error ZeroAddress();
    error ZeroAmount();
    error LengthMismatch(uint256 targets, uint256 selectors);
    error InsufficientStake(uint256 available, uint256 needed);
    error NoStakers();
    error RewardExceedsBalance(uint256 unreserved, uint256 amount);
    error NothingToClaim();
    error BelowProposalThreshold(uint256 stake, uint256 threshold);
    error TargetNotAllowed(address target);
    error CallNotAllowed(address target, bytes4 selector);
    error UnknownProposal(uint256 proposalId);
    error VotingClosed(uint256 proposalId);
    error AlreadyVoted(uint256 proposalId, address voter);
    error NoVotingPower(address voter);
    error ProposalNotSucceeded(uint256 proposalId, ProposalState state);
    error ProposalNotQueued(uint256 proposalId, ProposalState state);
    error TimelockNotElapsed(uint256 proposalId, uint64 eta, uint256 nowTs);
    error NotCancelable(uint256 proposalId, ProposalState state);
    error CancelNotAllowed(uint256 proposalId, address caller);
    error ExecutionFailed(uint256 proposalId);
    error TransferFailed();

    modifier onlyGovernance() {
        if (msg.sender != address(this)) revert NotGovernance(msg.sender);
        _;
    }

    /// @param guardian_ may cancel proposals before execution (address(0): no guardian)
    constructor(
        IOpenToken token_,
        address admin_,
        address guardian_,
        uint256 proposalThreshold_,
        uint64 votingPeriod_,
        uint64 timelockDelay_,
        uint16 quorumBps_,
        uint64 rewardDuration_
    ) {
        if (address(token_) == address(0) || admin_ == address(0)) revert ZeroAddress();
        token = token_;
        admin = admin_;
        guardian = guardian_;
        emit GuardianChanged(address(0), guardian_);
        _setProposalThreshold(proposalThreshold_);
        _setVotingPeriod(votingPeriod_);
        _setTimelockDelay(timelockDelay_);
        _setQuorumBps(quorumBps_);
        _setRewardDuration(rewardDuration_);
        _setQueueWindow(30 days);
        _setExecutionWindow(30 days);
        isTarget[address(this)] = true;
        emit TargetRegistered(address(this));
    }

    /// @notice The contract governs itself; provided for symmetry with the governed contracts.
    function governance() external view returns (address) {
        return address(this);
    }

    // ----------------------------------------------------------------- wiring

    /// @notice One-time wiring by the admin: the InferenceMarket allowed to notify rewards.
    function initMarket(address market_) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (market != address(0)) revert MarketAlreadySet();
        if (market_ == address(0)) revert ZeroAddress();
        market = market_;
        emit MarketInitialized(market_);
    }

    /// @notice One-time wiring by the admin: the calls proposals may make, as parallel lists
    ///         of (target, selector). Targets become registered; this contract always is.
    function initTargets(address[] calldata targets, bytes4[] calldata selectors) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (targetsInitialized) revert TargetsAlreadySet();
        if (targets.length != selectors.length) revert LengthMismatch(targets.length, selectors.length);
        targetsInitialized = true;
        for (uint256 i = 0; i < targets.length; i++) {
            if (targets[i] == address(0)) revert ZeroAddress();
            if (!isTarget[targets[i]]) {
                isTarget[targets[i]] = true;
                emit TargetRegistered(targets[i]);
            }
            isAllowedCall[targets[i]][selectors[i]] = true;
            emit AllowedCallChanged(targets[i], selectors[i], true);
        }
    }

    // ----------------------------------------------------------------- self-governed parameters

    /// @notice Governance: allows or forbids proposals calling `selector` on a registered target.
    function setAllowedCall(address target, bytes4 selector, bool allowed) external onlyGovernance {
        if (!isTarget[target]) revert TargetNotAllowed(target);
        isAllowedCall[target][selector] = allowed;
        emit AllowedCallChanged(target, selector, allowed);
    }

    /// @notice Governance: replaces the guardian (address(0) removes the veto).
    function setGuardian(address g) external onlyGovernance {
        emit GuardianChanged(guardian, g);
        guardian = g;
    }

    /// @notice Governance: quorum as bps of the total stake at a proposal's snapshot (1..10000).
    function setQuorumBps(uint16 v) external onlyGovernance {
        _setQuorumBps(v);
    }

    /// @notice Governance: voting period in seconds (1 hour..30 days) for new proposals.
    function setVotingPeriod(uint64 v) external onlyGovernance {
        _setVotingPeriod(v);
    }

    /// @notice Governance: timelock delay in seconds (<= 30 days) between queue and execute.
    function setTimelockDelay(uint64 v) external onlyGovernance {
        _setTimelockDelay(v);
    }

    /// @notice Governance: minimum stake (at the snapshot) needed to propose (<= 10M OPEN).
    function setProposalThreshold(uint256 v) external onlyGovernance {
        _setProposalThreshold(v);
    }

    /// @notice Governance: seconds (1..90 days) a passed proposal may wait to be queued.
    function setQueueWindow(uint64 v) external onlyGovernance {
        _setQueueWindow(v);
    }

    /// @notice Governance: seconds (1..90 days) a queued proposal stays executable after its eta.
    function setExecutionWindow(uint64 v) external onlyGovernance {
        _setExecutionWindow(v);
    }

    /// @notice Governance: seconds (1 hour..30 days) over which each notified reward streams
    ///         (from the next notification on).
    function setRewardDuration(uint64 v) external onlyGovernance {
        _setRewardDuration(v);
    }

    // ----------------------------------------------------------------- staking

    /// @notice Stakes `amount` token wei (needs prior approve).
    function stake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        _stream();
        _accrue(msg.sender);
        uint256 newStake = stakeOf[msg.sender] + amount;
        stakeOf[msg.sender] = newStake;
        totalStaked += amount;
        _write(_stakeHistory[msg.sender], newStake);
        _write(_totalHistory, totalStaked);
        if (!token.transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
        emit Staked(msg.sender, amount, newStake);
    }

    /// @notice Unstakes `amount`. Votes already cast keep their snapshot weight. Rewards stay
    ///         claimable.
    function unstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 cur = stakeOf[msg.sender];
        if (amount > cur) revert InsufficientStake(cur, amount);
        _stream();
        _accrue(msg.sender);
        uint256 newStake = cur - amount;
        stakeOf[msg.sender] = newStake;
        totalStaked -= amount;
        _write(_stakeHistory[msg.sender], newStake);
        _write(_totalHistory, totalStaked);
        if (!token.transfer(msg.sender, amount)) revert TransferFailed();
        emit Unstaked(msg.sender, amount, newStake);
    }

    /// @notice Market only: streams `amount` (already transferred in), together with whatever
    ///         is still streaming, to stakers over the next `rewardDuration` seconds.
    function notifyReward(uint256 amount) external {
        if (msg.sender != market) revert NotMarket(msg.sender);
        if (totalStaked == 0) revert NoStakers();
        uint256 unreserved = token.balanceOf(address(this)) - totalStaked - rewardsReserve;
        if (amount > unreserved) revert RewardExceedsBalance(unreserved, amount);
        _stream();
        rewardsReserve += amount;
        uint256 streaming = rewardRemaining + amount + undistributedRewards;
        undistributedRewards = 0;
        rewardRemaining = streaming;
        rewardRate = (streaming * PRECISION) / rewardDuration;
        uint64 end = uint64(block.timestamp) + rewardDuration;
        rewardPeriodEnd = end;
        emit RewardNotified(amount, streaming, end);
    }

    /// @notice Pays the caller's accrued rewards.
    function claimRewards() external returns (uint256 amount) {
        _stream();
        _accrue(msg.sender);
        amount = owedRewards[msg.sender];
        if (amount == 0) revert NothingToClaim();
        owedRewards[msg.sender] = 0;
        rewardsReserve -= amount;
        if (!token.transfer(msg.sender, amount)) revert TransferFailed();
        emit RewardClaimed(msg.sender, amount);
    }

    /// @notice Rewards `account` could claim now.
    function pendingRewards(address account) external view returns (uint256) {
        (uint256 inc,) = _split(_due());
        uint256 acc = accRewardPerShare + inc;
        return owedRewards[account] + (stakeOf[account] * (acc - rewardCheckpoint[account])) / PRECISION;
    }

    /// @notice The proposal with id `id` (all zero if it does not exist).
    function proposals(uint256 id) external view returns (Proposal memory) {
        return _proposals[id];
    }

    /// @notice Notified rewards no stake has earned yet: still streaming, or carried into the
    ///         next notification (nobody staked, rounding).
    function unearnedRewards() external view returns (uint256) {
        uint256 due = _due();
        (, uint256 allocated) = _split(due);
        return rewardRemaining - allocated + undistributedRewards;
    }

    /// @notice Stake of `account` at the end of second `time` (checkpointed).
    function stakeAt(address account, uint64 time) public view returns (uint256) {
        return _at(_stakeHistory[account], time);
    }

    /// @notice Total stake at the end of second `time` (checkpointed).
    function totalStakedAt(uint64 time) public view returns (uint256) {
        return _at(_totalHistory, time);
    }

    /// @dev Wei the stream owes stakers since the last update.
    function _due() private view returns (uint256 amount) {
        uint256 end = block.timestamp < rewardPeriodEnd ? block.timestamp : rewardPeriodEnd;
        if (end <= rewardUpdatedAt) return 0;
        if (end == rewardPeriodEnd) return rewardRemaining;
        amount = (rewardRate * (end - rewardUpdatedAt)) / PRECISION;
        if (amount > rewardRemaining) amount = rewardRemaining;
    }

    /// @dev Accumulator increment for `amount` over the current stake, and the wei it allocates
    ///      (rounded up, so the carry never double-counts a fraction accounts may receive).
    function _split(uint256 amount) private view returns (uint256 inc, uint256 allocated) {
        if (amount == 0 || totalStaked == 0) return (0, 0);
        inc = (amount * PRECISION) / totalStaked;
        allocated = (inc * totalStaked + PRECISION - 1) / PRECISION;
    }

    function _stream() private {
        uint256 amount = _due();
        rewardUpdatedAt = uint64(block.timestamp);
        if (amount == 0) return;
        rewardRemaining -= amount;
        (uint256 inc, uint256 allocated) = _split(amount);
        accRewardPerShare += inc;
        undistributedRewards += amount - allocated;
    }

    function _accrue(address account) private {
        uint256 acc = accRewardPerShare;
        uint256 accrued = (stakeOf[account] * (acc - rewardCheckpoint[account])) / PRECISION;
        if (accrued > 0) owedRewards[account] += accrued;
        rewardCheckpoint[account] = acc;
    }

    // ----------------------------------------------------------------- governance

    /// @notice Proposes calling `target` with `data` (an allow-listed selector); needs a stake of
    ///         at least proposalThreshold at the snapshot (the second before this block).
    /// @return id the new proposal id (starting at 1)
    function propose(address target, bytes calldata data, string calldata description)
        external
        returns (uint256 id)
    {
        uint64 snapshot = uint64(block.timestamp) - 1;
        uint256 s = stakeAt(msg.sender, snapshot);
        if (s < proposalThreshold || s == 0) revert BelowProposalThreshold(s, proposalThreshold);
        if (!isTarget[target]) revert TargetNotAllowed(target);
        bytes4 selector = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        if (!isAllowedCall[target][selector]) revert CallNotAllowed(target, selector);
        id = ++proposalCount;
        uint64 start = uint64(block.timestamp);
        uint64 end = start + votingPeriod;
        Proposal storage p = _proposals[id];
        p.proposer = msg.sender;
        p.target = target;
        p.data = data;
        p.snapshot = snapshot;
        p.voteStart = start;
        p.voteEnd = end;
        p.queueDeadline = end + queueWindow;
        p.quorumVotes = (uint256(quorumBps) * totalStakedAt(snapshot)) / MAX_BPS;
        emit ProposalCreated(id, msg.sender, target, data, description, start, end);
    }

    /// @notice Votes once with the caller's stake at the proposal's snapshot.
    function vote(uint256 id, bool support) external {
        Proposal storage p = _get(id);
        if (block.timestamp >= p.voteEnd || p.canceled) revert VotingClosed(id);
        if (hasVoted[id][msg.sender]) revert AlreadyVoted(id, msg.sender);
        uint256 weight = stakeAt(msg.sender, p.snapshot);
        if (weight == 0) revert NoVotingPower(msg.sender);
        hasVoted[id][msg.sender] = true;
        if (support) p.forVotes += weight;
        else p.againstVotes += weight;
        emit VoteCast(id, msg.sender, support, weight);
    }

    /// @notice Queues a passed proposal (majority for, turnout >= its quorum fixed at proposal
    ///         time) behind the timelock, within queueWindow after its vote ended.
    function queue(uint256 id) external {
        ProposalState s = state(id);
        if (s != ProposalState.Pending) revert ProposalNotSucceeded(id, s);
        Proposal storage p = _proposals[id];
        uint64 eta = uint64(block.timestamp) + timelockDelay;
        p.queued = true;
        p.eta = eta;
        p.executeDeadline = eta + executionWindow;
        emit ProposalQueued(id, eta);
    }

    /// @notice Executes a queued proposal between its eta and its execution deadline; bubbles
    ///         the target's revert data.
    function execute(uint256 id) external returns (bytes memory result) {
        ProposalState s = state(id);
        if (s != ProposalState.Queued) revert ProposalNotQueued(id, s);
        Proposal storage p = _proposals[id];
        if (block.timestamp < p.eta) revert TimelockNotElapsed(id, p.eta, block.timestamp);
        p.executed = true;
        bool ok;
        (ok, result) = p.target.call(p.data);
        if (!ok) {
            if (result.length == 0) revert ExecutionFailed(id);
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        emit ProposalExecuted(id, p.target, p.data);
    }

    /// @notice Cancels a proposal not yet executed: the guardian or the proposer may at any
    ///         time; anyone may once the proposer's stake is below proposalThreshold.
    function cancel(uint256 id) external {
        ProposalState s = state(id);
        if (s == ProposalState.Executed || s == ProposalState.Canceled || s == ProposalState.Expired) {
            revert NotCancelable(id, s);
        }
        Proposal storage p = _proposals[id];
        bool allowed = msg.sender == guardian && guardian != address(0);
        allowed = allowed || msg.sender == p.proposer || stakeOf[p.proposer] < proposalThreshold;
        if (!allowed) revert CancelNotAllowed(id, msg.sender);
        p.canceled = true;
        emit ProposalCanceled(id, msg.sender);
    }

    /// @notice Lifecycle state of a proposal (see ProposalState; Pending = passed, not queued).
    ///         The outcome depends only on votes and the quorum fixed at proposal time.
    function state(uint256 id) public view returns (ProposalState) {
        Proposal storage p = _get(id);
        if (p.executed) return ProposalState.Executed;
        if (p.canceled) return ProposalState.Canceled;
        if (p.queued) {
            return block.timestamp > p.executeDeadline ? ProposalState.Expired : ProposalState.Queued;
        }
        if (block.timestamp < p.voteEnd) return ProposalState.Active;
        uint256 turnout = p.forVotes + p.againstVotes;
        if (p.forVotes <= p.againstVotes || turnout < p.quorumVotes) return ProposalState.Defeated;
        return block.timestamp > p.queueDeadline ? ProposalState.Expired : ProposalState.Pending;
    }

    function _get(uint256 id) private view returns (Proposal storage p) {
        p = _proposals[id];
        if (p.proposer == address(0)) revert UnknownProposal(id);
    }

    // ----------------------------------------------------------------- checkpoints and bounds

    function _write(Checkpoint[] storage history, uint256 value) private {
        uint64 t = uint64(block.timestamp);
        uint256 n = history.length;
        if (n > 0 && history[n - 1].time == t) history[n - 1].value = uint192(value);
        else history.push(Checkpoint({time: t, value: uint192(value)}));
    }

    /// @dev The value of the last checkpoint at or before `time` (0 before the first).
    function _at(Checkpoint[] storage history, uint64 time) private view returns (uint256) {
        uint256 lo = 0;
        uint256 hi = history.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (history[mid].time <= time) lo = mid + 1;
            else hi = mid;
        }
        return lo == 0 ? 0 : history[lo - 1].value;
    }

    function _setQuorumBps(uint16 v) private {
        checkChange("quorumBps", quorumBps, v, MIN_QUORUM_BPS, MAX_BPS);
        quorumBps = v;
    }

    function _setVotingPeriod(uint64 v) private {
        checkChange("votingPeriod", votingPeriod, v, MIN_VOTING_PERIOD, MAX_VOTING_PERIOD);
        votingPeriod = v;
    }

    function _setTimelockDelay(uint64 v) private {
        checkChange("timelockDelay", timelockDelay, v, 0, MAX_TIMELOCK_DELAY);
        timelockDelay = v;
    }

    function _setProposalThreshold(uint256 v) private {
        checkChange("proposalThreshold", proposalThreshold, v, 0, MAX_PROPOSAL_THRESHOLD);
        proposalThreshold = v;
    }

    function _setRewardDuration(uint64 v) private {
        checkChange("rewardDuration", rewardDuration, v, MIN_REWARD_DURATION, MAX_REWARD_DURATION);
        rewardDuration = v;
    }

    function _setQueueWindow(uint64 v) private {
        checkChange("queueWindow", queueWindow, v, MIN_WINDOW, MAX_WINDOW);
        queueWindow = v;
    }

    function _setExecutionWindow(uint64 v) private {
        checkChange("executionWindow", executionWindow, v, MIN_WINDOW, MAX_WINDOW);
        executionWindow = v;
    }
}
