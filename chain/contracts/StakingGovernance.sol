// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOpenToken} from "./interfaces/IOpenToken.sol";

/// @title StakingGovernance
/// @notice OPEN staking with a share of inference fees as rewards, and stake-weighted
///         governance: propose a call on a registered protocol contract, vote, queue behind a
///         timelock, execute.
/// @dev Rewards use an accumulator (accRewardPerShare, 1e18 precision). A notified amount that
///      does not divide evenly over the stake is carried (undistributedRewards) into the next
///      notification. Per-account floor rounding can leave a few wei in rewardsReserve that no
///      account can claim. Invariant: token.balanceOf(this) == totalStaked + rewardsReserve
///      (absent direct token donations).
///      Voting weight is the voter's stake at vote time; voting locks the stake until the end of
///      that proposal's voting period. Quorum is checked against totalStaked at queue time.
///      Queued proposals do not expire. Proposal ids start at 1.
contract StakingGovernance {
    enum ProposalState {
        Pending, // voting has ended with a passing result; awaiting queue()
        Active, // voting open
        Defeated, // voting ended without majority or quorum
        Queued, // queued behind the timelock
        Executed
    }

    struct Proposal {
        address proposer;
        address target;
        bytes data;
        uint64 voteStart;
        uint64 voteEnd;
        uint64 eta;
        uint256 forVotes;
        uint256 againstVotes;
        bool queued;
        bool executed;
    }

    uint16 public constant MAX_BPS = 10_000;
    uint256 private constant PRECISION = 1e18;

    IOpenToken public immutable token;
    address public immutable admin;
    address public market;
    bool public targetsInitialized;

    uint256 public proposalThreshold;
    uint64 public votingPeriod;
    uint64 public timelockDelay;
    uint16 public quorumBps;

    uint256 public totalStaked;
    mapping(address => uint256) public stakeOf;
    mapping(address => uint64) public lockedUntil;

    uint256 public accRewardPerShare;
    uint256 public rewardsReserve;
    uint256 public undistributedRewards;
    mapping(address => uint256) public rewardCheckpoint;
    mapping(address => uint256) public owedRewards;

    uint256 public proposalCount;
    mapping(uint256 => Proposal) public proposals;
    mapping(uint256 => mapping(address => bool)) public hasVoted;
    mapping(address => bool) public isTarget;

    event MarketInitialized(address indexed market);
    event TargetRegistered(address indexed target);
    event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);
    event Staked(address indexed account, uint256 amount, uint256 newStake);
    event Unstaked(address indexed account, uint256 amount, uint256 newStake);
    event RewardNotified(uint256 amount, uint256 accRewardPerShare, uint256 carried);
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
    event ProposalExecuted(uint256 indexed proposalId);

    error NotAdmin(address caller);
    error NotGovernance(address caller);
    error NotMarket(address caller);
    error MarketAlreadySet();
    error TargetsAlreadySet();
    error ZeroAddress();
    error ZeroAmount();
    error BpsTooHigh(uint256 bps);
    error ZeroVotingPeriod();
    error InsufficientStake(uint256 available, uint256 needed);
    error StakeLocked(uint64 lockedUntil, uint256 nowTs);
    error NoStakers();
    error RewardExceedsBalance(uint256 unreserved, uint256 amount);
    error NothingToClaim();
    error BelowProposalThreshold(uint256 stake, uint256 threshold);
    error TargetNotAllowed(address target);
    error UnknownProposal(uint256 proposalId);
    error VotingClosed(uint256 proposalId);
    error AlreadyVoted(uint256 proposalId, address voter);
    error NoVotingPower(address voter);
    error ProposalNotSucceeded(uint256 proposalId, ProposalState state);
    error ProposalNotQueued(uint256 proposalId, ProposalState state);
    error TimelockNotElapsed(uint256 proposalId, uint64 eta, uint256 nowTs);
    error ExecutionFailed(uint256 proposalId);
    error TransferFailed();

    modifier onlyGovernance() {
        if (msg.sender != address(this)) revert NotGovernance(msg.sender);
        _;
    }

    constructor(
        IOpenToken token_,
        address admin_,
        uint256 proposalThreshold_,
        uint64 votingPeriod_,
        uint64 timelockDelay_,
        uint16 quorumBps_
    ) {
        if (address(token_) == address(0) || admin_ == address(0)) revert ZeroAddress();
        if (votingPeriod_ == 0) revert ZeroVotingPeriod();
        if (quorumBps_ > MAX_BPS) revert BpsTooHigh(quorumBps_);
        token = token_;
        admin = admin_;
        proposalThreshold = proposalThreshold_;
        votingPeriod = votingPeriod_;
        timelockDelay = timelockDelay_;
        quorumBps = quorumBps_;
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

    /// @notice One-time wiring by the admin: contracts proposals may target (this contract
    ///         is always a target).
    function initTargets(address[] calldata targets) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (targetsInitialized) revert TargetsAlreadySet();
        targetsInitialized = true;
        for (uint256 i = 0; i < targets.length; i++) {
            if (targets[i] == address(0)) revert ZeroAddress();
            isTarget[targets[i]] = true;
            emit TargetRegistered(targets[i]);
        }
    }

    // ----------------------------------------------------------------- self-governed parameters

    /// @notice Governance: quorum as bps of totalStaked (<= 10000).
    function setQuorumBps(uint16 v) external onlyGovernance {
        if (v > MAX_BPS) revert BpsTooHigh(v);
        emit ParameterChanged("quorumBps", quorumBps, v);
        quorumBps = v;
    }

    /// @notice Governance: voting period in seconds (> 0) for new proposals.
    function setVotingPeriod(uint64 v) external onlyGovernance {
        if (v == 0) revert ZeroVotingPeriod();
        emit ParameterChanged("votingPeriod", votingPeriod, v);
        votingPeriod = v;
    }

    /// @notice Governance: timelock delay in seconds between queue and execute.
    function setTimelockDelay(uint64 v) external onlyGovernance {
        emit ParameterChanged("timelockDelay", timelockDelay, v);
        timelockDelay = v;
    }

    /// @notice Governance: minimum stake needed to propose.
    function setProposalThreshold(uint256 v) external onlyGovernance {
        emit ParameterChanged("proposalThreshold", proposalThreshold, v);
        proposalThreshold = v;
    }

    // ----------------------------------------------------------------- staking

    /// @notice Stakes `amount` token wei (needs prior approve).
    function stake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        _accrue(msg.sender);
        uint256 newStake = stakeOf[msg.sender] + amount;
        stakeOf[msg.sender] = newStake;
        totalStaked += amount;
        if (!token.transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
        emit Staked(msg.sender, amount, newStake);
    }

    /// @notice Unstakes `amount` once the caller's vote lock has passed. Rewards stay claimable.
    function unstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 cur = stakeOf[msg.sender];
        if (amount > cur) revert InsufficientStake(cur, amount);
        uint64 lock = lockedUntil[msg.sender];
        if (block.timestamp < lock) revert StakeLocked(lock, block.timestamp);
        _accrue(msg.sender);
        uint256 newStake = cur - amount;
        stakeOf[msg.sender] = newStake;
        totalStaked -= amount;
        if (!token.transfer(msg.sender, amount)) revert TransferFailed();
        emit Unstaked(msg.sender, amount, newStake);
    }

    /// @notice Market only: distributes `amount` (already transferred in) pro rata to stakers.
    function notifyReward(uint256 amount) external {
        if (msg.sender != market) revert NotMarket(msg.sender);
        if (totalStaked == 0) revert NoStakers();
        uint256 unreserved = token.balanceOf(address(this)) - totalStaked - rewardsReserve;
        if (amount > unreserved) revert RewardExceedsBalance(unreserved, amount);
        rewardsReserve += amount;
        uint256 toDistribute = amount + undistributedRewards;
        uint256 inc = (toDistribute * PRECISION) / totalStaked;
        // Round the allocated amount up so the carry never double-counts a fraction of a wei
        // that accounts may already receive; claims can then never exceed rewardsReserve.
        uint256 allocated = (inc * totalStaked + PRECISION - 1) / PRECISION;
        undistributedRewards = toDistribute - allocated;
        accRewardPerShare += inc;
        emit RewardNotified(amount, accRewardPerShare, undistributedRewards);
    }

    /// @notice Pays the caller's accrued rewards.
    function claimRewards() external returns (uint256 amount) {
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
        return owedRewards[account] + (stakeOf[account] * (accRewardPerShare - rewardCheckpoint[account])) / PRECISION;
    }

    function _accrue(address account) private {
        uint256 acc = accRewardPerShare;
        uint256 accrued = (stakeOf[account] * (acc - rewardCheckpoint[account])) / PRECISION;
        if (accrued > 0) owedRewards[account] += accrued;
        rewardCheckpoint[account] = acc;
    }

    // ----------------------------------------------------------------- governance

    /// @notice Proposes calling `target` with `data`; needs stake >= proposalThreshold.
    /// @return id the new proposal id (starting at 1)
    function propose(address target, bytes calldata data, string calldata description)
        external
        returns (uint256 id)
    {
        uint256 s = stakeOf[msg.sender];
        if (s < proposalThreshold || s == 0) revert BelowProposalThreshold(s, proposalThreshold);
        if (!isTarget[target]) revert TargetNotAllowed(target);
        id = ++proposalCount;
        uint64 start = uint64(block.timestamp);
        uint64 end = start + votingPeriod;
        Proposal storage p = proposals[id];
        p.proposer = msg.sender;
        p.target = target;
        p.data = data;
        p.voteStart = start;
        p.voteEnd = end;
        emit ProposalCreated(id, msg.sender, target, data, description, start, end);
    }

    /// @notice Votes once with the caller's current stake; locks the stake until voting ends.
    function vote(uint256 id, bool support) external {
        Proposal storage p = _get(id);
        if (block.timestamp >= p.voteEnd) revert VotingClosed(id);
        if (hasVoted[id][msg.sender]) revert AlreadyVoted(id, msg.sender);
        uint256 weight = stakeOf[msg.sender];
        if (weight == 0) revert NoVotingPower(msg.sender);
        hasVoted[id][msg.sender] = true;
        if (support) p.forVotes += weight;
        else p.againstVotes += weight;
        if (lockedUntil[msg.sender] < p.voteEnd) lockedUntil[msg.sender] = p.voteEnd;
        emit VoteCast(id, msg.sender, support, weight);
    }

    /// @notice Queues a passed proposal (majority for, and turnout >= quorumBps of the
    ///         current totalStaked) behind the timelock.
    function queue(uint256 id) external {
        ProposalState s = state(id);
        if (s != ProposalState.Pending) revert ProposalNotSucceeded(id, s);
        Proposal storage p = proposals[id];
        uint64 eta = uint64(block.timestamp) + timelockDelay;
        p.queued = true;
        p.eta = eta;
        emit ProposalQueued(id, eta);
    }

    /// @notice Executes a queued proposal after its eta; bubbles the target's revert data.
    function execute(uint256 id) external returns (bytes memory result) {
        ProposalState s = state(id);
        if (s != ProposalState.Queued) revert ProposalNotQueued(id, s);
        Proposal storage p = proposals[id];
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
        emit ProposalExecuted(id);
    }

    /// @notice Lifecycle state of a proposal (see ProposalState; Pending = passed, not queued).
    function state(uint256 id) public view returns (ProposalState) {
        Proposal storage p = _get(id);
        if (p.executed) return ProposalState.Executed;
        if (p.queued) return ProposalState.Queued;
        if (block.timestamp < p.voteEnd) return ProposalState.Active;
        uint256 turnout = p.forVotes + p.againstVotes;
        uint256 quorum = (uint256(quorumBps) * totalStaked) / MAX_BPS;
        if (p.forVotes > p.againstVotes && turnout >= quorum) return ProposalState.Pending;
        return ProposalState.Defeated;
    }

    function _get(uint256 id) private view returns (Proposal storage p) {
        p = proposals[id];
        if (p.proposer == address(0)) revert UnknownProposal(id);
    }
}
