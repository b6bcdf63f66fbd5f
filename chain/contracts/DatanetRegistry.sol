// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOpenToken} from "./interfaces/IOpenToken.sol";

/// @title DatanetRegistry
/// @notice Datanets (domain data networks), staked data contributions, reviewer votes and
///         slashing. Contribution stakes are escrowed here; slashed amounts go to the treasury.
/// @dev Ids of datanets and contributions start at 1 (0 never exists). Invariant:
///      totalEscrowed() == token.balanceOf(address(this)) (absent direct token donations).
contract DatanetRegistry {
    enum Status {
        Pending,
        Accepted,
        Rejected,
        Harmful
    }

    struct Datanet {
        address owner;
        string name;
        string domain;
        uint64 createdAt;
    }

    struct Contribution {
        address contributor;
        uint256 datanetId;
        bytes32 contentHash;
        uint32 recordCount;
        uint256 stake; // remaining escrowed stake
        uint256 initialStake;
        uint64 submittedAt;
        uint64 unlockAt;
        Status status;
        uint8 acceptVotes;
        uint8 rejectVotes;
        bool slashed;
    }

    uint16 public constant MAX_BPS = 10_000;

    IOpenToken public immutable token;
    address public immutable admin;
    address public immutable treasury;
    address public governance;
    address public attributor;

    uint256 public minStake;
    uint16 public slashBps;
    uint64 public lockPeriod;
    uint8 public reviewQuorum;

    uint256 public datanetCount;
    uint256 public contributionCount;
    uint256 public totalEscrowed;

    mapping(uint256 => Datanet) public datanets;
    mapping(uint256 => Contribution) public contributions;
    mapping(uint256 => mapping(address => bool)) public isReviewer;
    mapping(uint256 => mapping(bytes32 => uint256)) public contributionByHash;
    mapping(uint256 => mapping(address => bool)) public hasReviewed;

    /// @notice The admin wired the governance contract (once).
    event GovernanceInitialized(address indexed governance);
    /// @notice A governed numeric parameter changed.
    event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);
    /// @notice The attributor role changed.
    event AttributorChanged(address indexed oldAttributor, address indexed newAttributor);
    event DatanetCreated(uint256 indexed datanetId, address indexed owner, string name, string domain);
    event ReviewerAdded(uint256 indexed datanetId, address indexed reviewer);
    event ReviewerRemoved(uint256 indexed datanetId, address indexed reviewer);
    event ContributionSubmitted(
        uint256 indexed contributionId,
        uint256 indexed datanetId,
        address indexed contributor,
        bytes32 contentHash,
        uint32 recordCount,
        uint256 stake,
        uint64 unlockAt
    );
    event ReviewCast(uint256 indexed contributionId, address indexed reviewer, bool accept, uint8 acceptVotes, uint8 rejectVotes);
    event ContributionAccepted(uint256 indexed contributionId);
    event ContributionRejected(uint256 indexed contributionId);
    event ContributionHarmful(uint256 indexed contributionId, bytes32 evidence);
    event Slashed(uint256 indexed contributionId, uint256 amount);
    event StakeWithdrawn(uint256 indexed contributionId, address indexed contributor, uint256 amount);

    error NotAdmin(address caller);
    error NotGovernance(address caller);
    error GovernanceAlreadySet();
    error ZeroAddress();
    error NotAttributor(address caller);
    error BpsTooHigh(uint256 bps);
    error QuorumZero();
    error UnknownDatanet(uint256 datanetId);
    error NotDatanetOwner(uint256 datanetId, address caller);
    error AlreadyReviewer(uint256 datanetId, address reviewer);
    error NotReviewer(uint256 datanetId, address caller);
    error StakeTooLow(uint256 stake, uint256 minStake);
    error DuplicateContent(uint256 datanetId, bytes32 contentHash, uint256 existingContributionId);
    error UnknownContribution(uint256 contributionId);
    error NotPending(uint256 contributionId, Status status);
    error AlreadyReviewed(uint256 contributionId, address reviewer);
    error SelfReview(uint256 contributionId);
    error NotAccepted(uint256 contributionId, Status status);
    error AlreadySlashed(uint256 contributionId);
    error NotContributor(uint256 contributionId, address caller);
    error StillLocked(uint256 contributionId, uint64 unlockAt, uint256 nowTs);
    error NothingToWithdraw(uint256 contributionId);
    error TransferFailed();

    modifier onlyGovernance() {
        if (msg.sender != governance || governance == address(0)) revert NotGovernance(msg.sender);
        _;
    }

    constructor(
        IOpenToken token_,
        address admin_,
        address treasury_,
        uint256 minStake_,
        uint16 slashBps_,
        uint64 lockPeriod_,
        uint8 reviewQuorum_
    ) {
        if (address(token_) == address(0) || admin_ == address(0) || treasury_ == address(0)) revert ZeroAddress();
        if (slashBps_ > MAX_BPS) revert BpsTooHigh(slashBps_);
        if (reviewQuorum_ == 0) revert QuorumZero();
        token = token_;
        admin = admin_;
        treasury = treasury_;
        minStake = minStake_;
        slashBps = slashBps_;
        lockPeriod = lockPeriod_;
        reviewQuorum = reviewQuorum_;
        attributor = admin_;
        emit AttributorChanged(address(0), admin_);
    }

    // ----------------------------------------------------------------- wiring / governance

    /// @notice One-time wiring by the admin: sets the governance contract.
    function initGovernance(address governance_) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (governance != address(0)) revert GovernanceAlreadySet();
        if (governance_ == address(0)) revert ZeroAddress();
        governance = governance_;
        emit GovernanceInitialized(governance_);
    }

    /// @notice Governance: minimum stake per contribution (token wei).
    function setMinStake(uint256 v) external onlyGovernance {
        emit ParameterChanged("minStake", minStake, v);
        minStake = v;
    }

    /// @notice Governance: fraction of stake slashed on rejection / harm, in bps (<= 10000).
    function setSlashBps(uint16 v) external onlyGovernance {
        if (v > MAX_BPS) revert BpsTooHigh(v);
        emit ParameterChanged("slashBps", slashBps, v);
        slashBps = v;
    }

    /// @notice Governance: stake lock period in seconds for new contributions.
    function setLockPeriod(uint64 v) external onlyGovernance {
        emit ParameterChanged("lockPeriod", lockPeriod, v);
        lockPeriod = v;
    }

    /// @notice Governance: number of same-direction reviews that decides a contribution (>= 1).
    function setReviewQuorum(uint8 v) external onlyGovernance {
        if (v == 0) revert QuorumZero();
        emit ParameterChanged("reviewQuorum", reviewQuorum, v);
        reviewQuorum = v;
    }

    /// @notice Governance: sets the attributor role allowed to slash harmful contributions.
    function setAttributor(address a) external onlyGovernance {
        if (a == address(0)) revert ZeroAddress();
        emit AttributorChanged(attributor, a);
        attributor = a;
    }

    // ----------------------------------------------------------------- datanets

    /// @notice Creates a datanet owned by the caller.
    /// @return id the new datanet id (starting at 1)
    function createDatanet(string calldata name, string calldata domain) external returns (uint256 id) {
        id = ++datanetCount;
        datanets[id] = Datanet({owner: msg.sender, name: name, domain: domain, createdAt: uint64(block.timestamp)});
        emit DatanetCreated(id, msg.sender, name, domain);
    }

    /// @notice Datanet owner adds a reviewer.
    function addReviewer(uint256 datanetId, address reviewer) external {
        _onlyDatanetOwner(datanetId);
        if (reviewer == address(0)) revert ZeroAddress();
        if (isReviewer[datanetId][reviewer]) revert AlreadyReviewer(datanetId, reviewer);
        isReviewer[datanetId][reviewer] = true;
        emit ReviewerAdded(datanetId, reviewer);
    }

    /// @notice Datanet owner removes a reviewer.
    function removeReviewer(uint256 datanetId, address reviewer) external {
        _onlyDatanetOwner(datanetId);
        if (!isReviewer[datanetId][reviewer]) revert NotReviewer(datanetId, reviewer);
        isReviewer[datanetId][reviewer] = false;
        emit ReviewerRemoved(datanetId, reviewer);
    }

    // ----------------------------------------------------------------- contributions

    /// @notice Submits a contribution with `stake` token wei escrowed (needs prior approve).
    /// @return contributionId the new contribution id (starting at 1)
    function contribute(uint256 datanetId, bytes32 contentHash, uint32 recordCount, uint256 stake)
        external
        returns (uint256 contributionId)
    {
        if (datanets[datanetId].owner == address(0)) revert UnknownDatanet(datanetId);
        if (stake < minStake) revert StakeTooLow(stake, minStake);
        uint256 existing = contributionByHash[datanetId][contentHash];
        if (existing != 0) revert DuplicateContent(datanetId, contentHash, existing);

        contributionId = ++contributionCount;
        uint64 unlockAt = uint64(block.timestamp) + lockPeriod;
        contributions[contributionId] = Contribution({
            contributor: msg.sender,
            datanetId: datanetId,
            contentHash: contentHash,
            recordCount: recordCount,
            stake: stake,
            initialStake: stake,
            submittedAt: uint64(block.timestamp),
            unlockAt: unlockAt,
            status: Status.Pending,
            acceptVotes: 0,
            rejectVotes: 0,
            slashed: false
        });
        contributionByHash[datanetId][contentHash] = contributionId;
        totalEscrowed += stake;
        if (!token.transferFrom(msg.sender, address(this), stake)) revert TransferFailed();
        emit ContributionSubmitted(contributionId, datanetId, msg.sender, contentHash, recordCount, stake, unlockAt);
    }

    /// @notice A reviewer of the contribution's datanet votes once; reviewQuorum same-direction
    ///         votes decide. Rejection slashes slashBps of the stake to the treasury at once.
    function review(uint256 contributionId, bool accept) external {
        Contribution storage c = _get(contributionId);
        if (!isReviewer[c.datanetId][msg.sender]) revert NotReviewer(c.datanetId, msg.sender);
        if (c.status != Status.Pending) revert NotPending(contributionId, c.status);
        if (c.contributor == msg.sender) revert SelfReview(contributionId);
        if (hasReviewed[contributionId][msg.sender]) revert AlreadyReviewed(contributionId, msg.sender);
        hasReviewed[contributionId][msg.sender] = true;
        if (accept) c.acceptVotes += 1;
        else c.rejectVotes += 1;
        emit ReviewCast(contributionId, msg.sender, accept, c.acceptVotes, c.rejectVotes);

        if (c.acceptVotes >= reviewQuorum) {
            c.status = Status.Accepted;
            emit ContributionAccepted(contributionId);
        } else if (c.rejectVotes >= reviewQuorum) {
            c.status = Status.Rejected;
            emit ContributionRejected(contributionId);
            _slash(contributionId, c);
        }
    }

    /// @notice Attributor slashes an accepted contribution found harmful (at most once).
    /// @param evidence hash of the off-chain evidence (e.g. attribution report)
    function slashHarmful(uint256 contributionId, bytes32 evidence) external {
        if (msg.sender != attributor) revert NotAttributor(msg.sender);
        Contribution storage c = _get(contributionId);
        if (c.status != Status.Accepted) revert NotAccepted(contributionId, c.status);
        if (c.slashed) revert AlreadySlashed(contributionId);
        c.status = Status.Harmful;
        emit ContributionHarmful(contributionId, evidence);
        _slash(contributionId, c);
    }

    /// @notice Contributor withdraws the remaining stake once decided and unlocked.
    function withdrawStake(uint256 contributionId) external {
        Contribution storage c = _get(contributionId);
        if (c.contributor != msg.sender) revert NotContributor(contributionId, msg.sender);
        if (c.status == Status.Pending) revert NotPending(contributionId, c.status);
        if (block.timestamp < c.unlockAt) revert StillLocked(contributionId, c.unlockAt, block.timestamp);
        uint256 amount = c.stake;
        if (amount == 0) revert NothingToWithdraw(contributionId);
        c.stake = 0;
        totalEscrowed -= amount;
        if (!token.transfer(msg.sender, amount)) revert TransferFailed();
        emit StakeWithdrawn(contributionId, msg.sender, amount);
    }

    // ----------------------------------------------------------------- views

    /// @notice Whether the contribution exists and was accepted (and not later marked harmful).
    function isAccepted(uint256 contributionId) external view returns (bool) {
        return contributions[contributionId].status == Status.Accepted
            && contributions[contributionId].contributor != address(0);
    }

    // ----------------------------------------------------------------- internals

    function _slash(uint256 contributionId, Contribution storage c) private {
        c.slashed = true;
        uint256 amount = (c.stake * slashBps) / MAX_BPS;
        if (amount > 0) {
            c.stake -= amount;
            totalEscrowed -= amount;
            if (!token.transfer(treasury, amount)) revert TransferFailed();
        }
        emit Slashed(contributionId, amount);
    }

    function _get(uint256 contributionId) private view returns (Contribution storage c) {
        c = contributions[contributionId];
        if (c.contributor == address(0)) revert UnknownContribution(contributionId);
    }

    function _onlyDatanetOwner(uint256 datanetId) private view {
        address owner = datanets[datanetId].owner;
        if (owner == address(0)) revert UnknownDatanet(datanetId);
        if (owner != msg.sender) revert NotDatanetOwner(datanetId, msg.sender);
    }
}
