// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOpenToken} from "./interfaces/IOpenToken.sol";

/// @title GrantVault (OpenCircle)
/// @notice OpenCircle grant fund: OPEN deposits, USD-denominated grant applications in three
///         tiers, committee approval (threshold), milestone tranches and failure refunds.
/// @dev Grant ids start at 1. Invariant: available() + reserved() <= token.balanceOf(this)
///      (equal absent direct token donations). Every committee decision needs
///      `approvalThreshold` distinct members: activating a grant, releasing each milestone
///      tranche, failing a grant; a grantee who sits on the committee takes no part in
///      decisions on its own grant. The OPEN price moves at most by a factor of two per
///      change, so one captured vote cannot price a grant at the whole vault.
contract GrantVault {
    enum GrantStatus {
        Pending,
        Active,
        Completed,
        Failed
    }

    struct Grant {
        address grantee;
        uint8 tier;
        uint8 milestones;
        uint8 milestonesReleased;
        GrantStatus status;
        uint8 approvals;
        uint8 releaseVotes; // votes for releasing the next milestone
        uint8 failVotes;
        uint64 appliedAt;
        uint256 amountUsd;
        uint256 amountOpen;
        uint256 released;
        bytes32 proposalHash;
    }

    uint8 public constant MAX_MILESTONES = 10;
    uint8 public constant TIER_COUNT = 3;

    IOpenToken public immutable token;
    address public immutable admin;
    address public governance;
    uint8 public immutable approvalThreshold;
    uint256 public openPriceUsdE8;

    uint256 public available;
    uint256 public reserved;
    uint256 public grantCount;

    address[] private _committee;
    mapping(address => bool) public isCommittee;
    mapping(uint256 => Grant) public grants;
    mapping(uint256 => mapping(address => bool)) public hasApproved;
    /// @dev grant => milestone (1-based; 0 for failing) => member => voted
    mapping(uint256 => mapping(uint8 => mapping(address => bool))) public hasVotedOn;

    event GovernanceInitialized(address indexed governance);
    event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);
    event Funded(address indexed from, uint256 amount, uint256 available);
    event GrantApplied(
        uint256 indexed grantId, address indexed grantee, uint8 tier, uint256 amountUsd, uint8 milestones, bytes32 proposalHash
    );
    event GrantApproved(uint256 indexed grantId, address indexed member, uint8 approvals);
    event GrantActivated(uint256 indexed grantId, uint256 amountOpen, uint256 openPriceUsdE8);
    event MilestoneVoted(uint256 indexed grantId, uint8 milestone, address indexed member, uint8 votes);
    event FailVoted(uint256 indexed grantId, address indexed member, uint8 votes);
    event MilestoneReleased(uint256 indexed grantId, uint8 milestone, uint256 amount, address indexed grantee);
    event GrantCompleted(uint256 indexed grantId);
    event GrantFailed(uint256 indexed grantId);
    event FundsReturned(uint256 indexed grantId, uint256 amount, uint256 available);

    error NotAdmin(address caller);
    error NotGovernance(address caller);
    error GovernanceAlreadySet();
    error ZeroAddress();
    error ZeroAmount();
    error ZeroPrice();
    error EmptyCommittee();
    error DuplicateCommitteeMember(address member);
    error InvalidThreshold(uint8 threshold, uint256 committeeSize);
    error NotCommittee(address caller);
    error InvalidTier(uint8 tier);
    error AmountOutOfTier(uint8 tier, uint256 amountUsd, uint256 minUsd, uint256 maxUsd);
    error InvalidMilestones(uint8 milestones);
    error UnknownGrant(uint256 grantId);
    error GrantNotPending(uint256 grantId, GrantStatus status);
    error GrantNotActive(uint256 grantId, GrantStatus status);
    error AlreadyApproved(uint256 grantId, address member);
    error SelfApproval(uint256 grantId);
    error AlreadyVoted(uint256 grantId, uint8 milestone, address member);
    error PriceStepTooLarge(uint256 oldPriceUsdE8, uint256 newPriceUsdE8);
    error InsufficientFunds(uint256 available, uint256 needed);
    error TransferFailed();

    /// @param committee_ committee members (distinct, non-zero)
    /// @param approvalThreshold_ approvals needed to activate a grant (1..committee size)
    /// @param openPriceUsdE8_ OPEN price in USD with 8 decimals (e.g. 50_000_000 = 0.50 USD)
    constructor(
        IOpenToken token_,
        address admin_,
        address[] memory committee_,
        uint8 approvalThreshold_,
        uint256 openPriceUsdE8_
    ) {
        if (address(token_) == address(0) || admin_ == address(0)) revert ZeroAddress();
        if (committee_.length == 0) revert EmptyCommittee();
        if (approvalThreshold_ == 0 || approvalThreshold_ > committee_.length) {
            revert InvalidThreshold(approvalThreshold_, committee_.length);
        }
        if (openPriceUsdE8_ == 0) revert ZeroPrice();
        for (uint256 i = 0; i < committee_.length; i++) {
            address m = committee_[i];
            if (m == address(0)) revert ZeroAddress();
            if (isCommittee[m]) revert DuplicateCommitteeMember(m);
            isCommittee[m] = true;
        }
        token = token_;
        admin = admin_;
        _committee = committee_;
        approvalThreshold = approvalThreshold_;
        openPriceUsdE8 = openPriceUsdE8_;
        emit ParameterChanged("approvalThreshold", 0, approvalThreshold_);
        emit ParameterChanged("openPriceUsdE8", 0, openPriceUsdE8_);
    }

    modifier onlyCommittee() {
        if (!isCommittee[msg.sender]) revert NotCommittee(msg.sender);
        _;
    }

    /// @notice One-time wiring by the admin: sets the governance contract.
    function initGovernance(address governance_) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (governance != address(0)) revert GovernanceAlreadySet();
        if (governance_ == address(0)) revert ZeroAddress();
        governance = governance_;
        emit GovernanceInitialized(governance_);
    }

    /// @notice Governance: OPEN price in USD (8 decimals) used when grants are activated; at
    ///         most twice or half the current price per change.
    function setOpenPrice(uint256 priceUsdE8) external {
        if (msg.sender != governance || governance == address(0)) revert NotGovernance(msg.sender);
        if (priceUsdE8 == 0) revert ZeroPrice();
        uint256 old = openPriceUsdE8;
        if (priceUsdE8 > old * 2 || priceUsdE8 * 2 < old) revert PriceStepTooLarge(old, priceUsdE8);
        emit ParameterChanged("openPriceUsdE8", openPriceUsdE8, priceUsdE8);
        openPriceUsdE8 = priceUsdE8;
    }

    /// @notice Committee members.
    function committee() external view returns (address[] memory) {
        return _committee;
    }

    /// @notice Tier bounds in whole USD: 0 Exploration 25k-50k, 1 Building 50k-150k,
    ///         2 Expansion 250k-500k.
    function tierBounds(uint8 tier) public pure returns (uint256 minUsd, uint256 maxUsd) {
        if (tier == 0) return (25_000, 50_000);
        if (tier == 1) return (50_000, 150_000);
        if (tier == 2) return (250_000, 500_000);
        revert InvalidTier(tier);
    }

    /// @notice Deposits `amount` OPEN into the fund (needs prior approve).
    function deposit(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        available += amount;
        if (!token.transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
        emit Funded(msg.sender, amount, available);
    }

    /// @notice Applies for a grant of `amountUsd` whole USD in `tier`, paid in `milestones` tranches.
    /// @return grantId the new grant id (starting at 1)
    function applyForGrant(uint8 tier, uint256 amountUsd, uint8 milestones, bytes32 proposalHash)
        external
        returns (uint256 grantId)
    {
        (uint256 minUsd, uint256 maxUsd) = tierBounds(tier);
        if (amountUsd < minUsd || amountUsd > maxUsd) revert AmountOutOfTier(tier, amountUsd, minUsd, maxUsd);
        if (milestones == 0 || milestones > MAX_MILESTONES) revert InvalidMilestones(milestones);
        grantId = ++grantCount;
        Grant storage g = grants[grantId];
        g.grantee = msg.sender;
        g.tier = tier;
        g.milestones = milestones;
        g.status = GrantStatus.Pending;
        g.appliedAt = uint64(block.timestamp);
        g.amountUsd = amountUsd;
        g.proposalHash = proposalHash;
        emit GrantApplied(grantId, msg.sender, tier, amountUsd, milestones, proposalHash);
    }

    /// @notice Committee member approves a pending grant (once each). At the threshold the
    ///         OPEN amount is fixed at the current price and reserved from available funds.
    function approveGrant(uint256 grantId) external onlyCommittee {
        Grant storage g = _get(grantId);
        if (g.status != GrantStatus.Pending) revert GrantNotPending(grantId, g.status);
        if (g.grantee == msg.sender) revert SelfApproval(grantId);
        if (hasApproved[grantId][msg.sender]) revert AlreadyApproved(grantId, msg.sender);
        hasApproved[grantId][msg.sender] = true;
        g.approvals += 1;
        emit GrantApproved(grantId, msg.sender, g.approvals);
        if (g.approvals >= approvalThreshold) {
            uint256 amountOpen = (g.amountUsd * 1e18 * 1e8) / openPriceUsdE8;
            if (amountOpen > available) revert InsufficientFunds(available, amountOpen);
            available -= amountOpen;
            reserved += amountOpen;
            g.amountOpen = amountOpen;
            g.status = GrantStatus.Active;
            emit GrantActivated(grantId, amountOpen, openPriceUsdE8);
        }
    }

    /// @notice A committee member votes to release the next milestone tranche; at
    ///         approvalThreshold votes it is paid (the last takes the remainder).
    function releaseMilestone(uint256 grantId) external onlyCommittee {
        Grant storage g = _get(grantId);
        if (g.status != GrantStatus.Active) revert GrantNotActive(grantId, g.status);
        uint8 milestone = g.milestonesReleased + 1;
        _vote(grantId, g, milestone);
        g.releaseVotes += 1;
        emit MilestoneVoted(grantId, milestone, msg.sender, g.releaseVotes);
        if (g.releaseVotes < approvalThreshold) return;
        g.releaseVotes = 0;
        uint256 amount = milestone == g.milestones ? g.amountOpen - g.released : g.amountOpen / g.milestones;
        g.milestonesReleased = milestone;
        g.released += amount;
        reserved -= amount;
        if (milestone == g.milestones) g.status = GrantStatus.Completed;
        if (amount > 0 && !token.transfer(g.grantee, amount)) revert TransferFailed();
        emit MilestoneReleased(grantId, milestone, amount, g.grantee);
        if (g.status == GrantStatus.Completed) emit GrantCompleted(grantId);
    }

    /// @notice A committee member votes to fail an active grant; at approvalThreshold votes the
    ///         unreleased amount returns to available.
    function failGrant(uint256 grantId) external onlyCommittee {
        Grant storage g = _get(grantId);
        if (g.status != GrantStatus.Active) revert GrantNotActive(grantId, g.status);
        _vote(grantId, g, 0);
        g.failVotes += 1;
        emit FailVoted(grantId, msg.sender, g.failVotes);
        if (g.failVotes < approvalThreshold) return;
        uint256 back = g.amountOpen - g.released;
        g.status = GrantStatus.Failed;
        reserved -= back;
        available += back;
        emit GrantFailed(grantId);
        emit FundsReturned(grantId, back, available);
    }

    /// @dev Records the caller's vote on `milestone` (0: failing) of a grant that is not its own.
    function _vote(uint256 grantId, Grant storage g, uint8 milestone) private {
        if (g.grantee == msg.sender) revert SelfApproval(grantId);
        if (hasVotedOn[grantId][milestone][msg.sender]) revert AlreadyVoted(grantId, milestone, msg.sender);
        hasVotedOn[grantId][milestone][msg.sender] = true;
    }

    function _get(uint256 grantId) private view returns (Grant storage g) {
        g = grants[grantId];
        if (g.grantee == address(0)) revert UnknownGrant(grantId);
    }
}
