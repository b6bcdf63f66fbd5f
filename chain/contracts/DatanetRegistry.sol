// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOpenToken} from "./interfaces/IOpenToken.sol";
import {checkChange} from "./Bounds.sol";

/// @title DatanetRegistry
/// @notice Datanets (domain data networks), staked data contributions, reviewer votes and
///         slashing. Contribution stakes are escrowed here; slashed amounts go to the treasury.
/// @dev Ids of datanets and contributions start at 1 (0 never exists). Invariant:
///      totalEscrowed() <= token.balanceOf(address(this)) (equal absent direct token
///      donations).
///
///      A contribution's stake stays escrowed until `unlockAt` and, once accepted, until
///      `attributionWindow` seconds after acceptance, so it is still there when attribution
///      proves the data harmful. A contribution still pending `reviewPeriod` seconds after
///      submission (too few reviewers, a split vote, reviewers removed) lapses: it can no
///      longer be reviewed and its contributor withdraws the whole stake. A content hash is a
///      claim of its submitter: uniqueness is per (datanet, contributor, hash), so another
///      key copying a hash seen in the mempool registers its own contribution and takes
///      nothing from the author's; the registry does not judge originality (reviewers and
///      attribution do). Every governed parameter has bounds.
///
///      Trust: a Datanet's owner chooses its reviewers, so an owner with reviewers of its own
///      can have its data accepted; such data is still escrowed through the attribution
///      window and slashable as harmful.
contract DatanetRegistry {
    enum Status {
        Pending,
        Accepted,
        Rejected,
        Harmful,
        Lapsed // pending past its review deadline; the whole stake is withdrawable
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
        uint64 reviewDeadline;
        uint64 decidedAt;
        Status status;
        uint8 acceptVotes;
        uint8 rejectVotes;
        bool slashed;
    }

    uint16 public constant MAX_BPS = 10_000;
    uint8 public constant MAX_REVIEW_QUORUM = 15;
    uint256 public constant MAX_MIN_STAKE = 10_000_000e18;
    uint64 public constant MAX_LOCK_PERIOD = 365 days;
    uint64 public constant MIN_WINDOW = 1 days;
    uint64 public constant MAX_WINDOW = 180 days;

    IOpenToken public immutable token;
    address public immutable admin;
    address public immutable treasury;
    address public governance;
    address public attributor;

    uint256 public minStake;
    uint16 public slashBps;
    uint64 public lockPeriod;
    uint8 public reviewQuorum;
    uint64 public reviewPeriod;
    uint64 public attributionWindow;

    uint256 public datanetCount;
    uint256 public contributionCount;
    uint256 public totalEscrowed;

    mapping(uint256 => Datanet) public datanets;
    mapping(uint256 => Contribution) private _contributions;
    mapping(uint256 => mapping(address => bool)) public isReviewer;
    mapping(uint256 => mapping(address => mapping(bytes32 => uint256))) public contributionByHash;
    mapping(uint256 => mapping(address => bool)) public hasReviewed;

    /// @notice The admin wired the governance contract (once).
    event GovernanceInitialized(address indexed governance);
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
    event ContributionLapsed(uint256 indexed contributionId);
    event Slashed(uint256 indexed contributionId, uint256 amount);
    event StakeWithdrawn(uint256 indexed contributionId, address indexed contributor, uint256 amount);

    error NotAdmin(address caller);
    error NotGovernance(address caller);
    error GovernanceAlreadySet();
    error ZeroAddress();
    error NotAttributor(address caller);
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
    error ReviewPeriodOver(uint256 contributionId, uint64 reviewDeadline);
    error NothingToWithdraw(uint256 contributionId);
    error TransferFailed();

    modifier onlyGovernance() {
        if (msg.sender != governance || governance == address(0)) revert NotGovernance(msg.sender);
        _;
    }

    /// @param attributor_ the key allowed to slash harmful contributions
    /// @param windows_ (reviewPeriod, attributionWindow) in seconds, each 1..180 days
    constructor(
        IOpenToken token_,
        address admin_,
        address treasury_,
        address attributor_,
        uint256 minStake_,
        uint16 slashBps_,
        uint64 lockPeriod_,
        uint8 reviewQuorum_,
        uint64[2] memory windows_
    ) {
        if (
            address(token_) == address(0) || admin_ == address(0) || treasury_ == address(0)
                || attributor_ == address(0)
        ) revert ZeroAddress();
        token = token_;
        admin = admin_;
        treasury = treasury_;
        attributor = attributor_;
        emit AttributorChanged(address(0), attributor_);
        _setMinStake(minStake_);
        _setSlashBps(slashBps_);
        _setLockPeriod(lockPeriod_);
        _setReviewQuorum(reviewQuorum_);
        _setReviewPeriod(windows_[0]);
        _setAttributionWindow(windows_[1]);
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

    /// @notice Governance: minimum stake per contribution (token wei, <= 10M OPEN).
    function setMinStake(uint256 v) external onlyGovernance {
        _setMinStake(v);
    }

    /// @notice Governance: fraction of stake slashed on rejection / harm, in bps (<= 10000).
    function setSlashBps(uint16 v) external onlyGovernance {
        _setSlashBps(v);
    }

    /// @notice Governance: stake lock period in seconds (<= 365 days) for new contributions.
    function setLockPeriod(uint64 v) external onlyGovernance {
        _setLockPeriod(v);
    }

    /// @notice Governance: number of same-direction reviews that decides a contribution (1..15).
    function setReviewQuorum(uint8 v) external onlyGovernance {
        _setReviewQuorum(v);
    }

    /// @notice Governance: seconds (1..180 days) a new contribution may wait for its reviews.
    function setReviewPeriod(uint64 v) external onlyGovernance {
        _setReviewPeriod(v);
    }

    /// @notice Governance: seconds (1..180 days) an accepted stake stays slashable after
    ///         acceptance before it can be withdrawn.
    function setAttributionWindow(uint64 v) external onlyGovernance {
        _setAttributionWindow(v);
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
        uint256 existing = contributionByHash[datanetId][msg.sender][contentHash];
        if (existing != 0) revert DuplicateContent(datanetId, contentHash, existing);

        contributionId = ++contributionCount;
        uint64 unlockAt = uint64(block.timestamp) + lockPeriod;
        _contributions[contributionId] = Contribution({
            contributor: msg.sender,
            datanetId: datanetId,
            contentHash: contentHash,
            recordCount: recordCount,
            stake: stake,
            initialStake: stake,
            submittedAt: uint64(block.timestamp),
            unlockAt: unlockAt,
            reviewDeadline: uint64(block.timestamp) + reviewPeriod,
            decidedAt: 0,
            status: Status.Pending,
            acceptVotes: 0,
            rejectVotes: 0,
            slashed: false
        });
        contributionByHash[datanetId][msg.sender][contentHash] = contributionId;
        totalEscrowed += stake;
        if (!token.transferFrom(msg.sender, address(this), stake)) revert TransferFailed();
        emit ContributionSubmitted(contributionId, datanetId, msg.sender, contentHash, recordCount, stake, unlockAt);
    }

    /// @notice A reviewer of the contribution's datanet votes once, before its review deadline;
    ///         reviewQuorum same-direction votes decide. Rejection slashes slashBps of the stake
    ///         to the treasury at once.
    function review(uint256 contributionId, bool accept) external {
        Contribution storage c = _get(contributionId);
        if (!isReviewer[c.datanetId][msg.sender]) revert NotReviewer(c.datanetId, msg.sender);
        if (c.status != Status.Pending) revert NotPending(contributionId, c.status);
        if (c.contributor == msg.sender) revert SelfReview(contributionId);
        if (hasReviewed[contributionId][msg.sender]) revert AlreadyReviewed(contributionId, msg.sender);
        if (block.timestamp > c.reviewDeadline) revert ReviewPeriodOver(contributionId, c.reviewDeadline);
        hasReviewed[contributionId][msg.sender] = true;
        if (accept) c.acceptVotes += 1;
        else c.rejectVotes += 1;
        emit ReviewCast(contributionId, msg.sender, accept, c.acceptVotes, c.rejectVotes);

        if (c.acceptVotes >= reviewQuorum) {
            c.status = Status.Accepted;
            c.decidedAt = uint64(block.timestamp);
            emit ContributionAccepted(contributionId);
        } else if (c.rejectVotes >= reviewQuorum) {
            c.status = Status.Rejected;
            c.decidedAt = uint64(block.timestamp);
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

    /// @notice Contributor withdraws the remaining stake once decided and unlocked (an accepted
    ///         stake also waits out the attribution window), or, whole, once a pending
    ///         contribution lapsed at its review deadline.
    function withdrawStake(uint256 contributionId) external {
        Contribution storage c = _get(contributionId);
        if (c.contributor != msg.sender) revert NotContributor(contributionId, msg.sender);
        if (c.status == Status.Pending) {
            if (block.timestamp <= c.reviewDeadline) revert NotPending(contributionId, c.status);
            c.status = Status.Lapsed;
            emit ContributionLapsed(contributionId);
        } else {
            uint64 unlock = c.unlockAt;
            if (c.status == Status.Accepted && c.decidedAt + attributionWindow > unlock) {
                unlock = c.decidedAt + attributionWindow;
            }
            if (block.timestamp < unlock) revert StillLocked(contributionId, unlock, block.timestamp);
        }
        uint256 amount = c.stake;
        if (amount == 0) revert NothingToWithdraw(contributionId);
        c.stake = 0;
        totalEscrowed -= amount;
        if (!token.transfer(msg.sender, amount)) revert TransferFailed();
        emit StakeWithdrawn(contributionId, msg.sender, amount);
    }

    // ----------------------------------------------------------------- views

    /// @notice The contribution with id `id` (all zero if it does not exist).
    function contributions(uint256 id) external view returns (Contribution memory) {
        return _contributions[id];
    }


    /// @notice Whether the contribution exists and was accepted (and not later marked harmful).
    function isAccepted(uint256 contributionId) external view returns (bool) {
        return _contributions[contributionId].status == Status.Accepted
            && _contributions[contributionId].contributor != address(0);
    }

    // ----------------------------------------------------------------- internals

    function _slash(uint256 contributionId, Contribution storage c) private {
        c.slashed = true;
        uint256 amount = (c.stake * slashBps) / MAX_BPS;
        if (amount == 0) return; // nothing taken: not reported as a slash
        c.stake -= amount;
        totalEscrowed -= amount;
        if (!token.transfer(treasury, amount)) revert TransferFailed();
        emit Slashed(contributionId, amount);
    }

    function _setMinStake(uint256 v) private {
        checkChange("minStake", minStake, v, 0, MAX_MIN_STAKE);
        minStake = v;
    }

    function _setSlashBps(uint16 v) private {
        checkChange("slashBps", slashBps, v, 0, MAX_BPS);
        slashBps = v;
    }

    function _setLockPeriod(uint64 v) private {
        checkChange("lockPeriod", lockPeriod, v, 0, MAX_LOCK_PERIOD);
        lockPeriod = v;
    }

    function _setReviewQuorum(uint8 v) private {
        checkChange("reviewQuorum", reviewQuorum, v, 1, MAX_REVIEW_QUORUM);
        reviewQuorum = v;
    }

    function _setReviewPeriod(uint64 v) private {
        checkChange("reviewPeriod", reviewPeriod, v, MIN_WINDOW, MAX_WINDOW);
        reviewPeriod = v;
    }

    function _setAttributionWindow(uint64 v) private {
        checkChange("attributionWindow", attributionWindow, v, MIN_WINDOW, MAX_WINDOW);
        attributionWindow = v;
    }

    function _get(uint256 contributionId) private view returns (Contribution storage c) {
        c = _contributions[contributionId];
        if (c.contributor == address(0)) revert UnknownContribution(contributionId);
    }

    function _onlyDatanetOwner(uint256 datanetId) private view {
        address owner = datanets[datanetId].owner;
        if (owner == address(0)) revert UnknownDatanet(datanetId);
        if (owner != msg.sender) revert NotDatanetOwner(datanetId, msg.sender);
    }
}
