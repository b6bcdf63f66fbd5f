// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOpenToken} from "./interfaces/IOpenToken.sol";
import {checkChange} from "./Bounds.sol";

/// @title AttributionRewards
/// @notice Holds the contributors' share of inference fees per model and pays it out by
///         Proof-of-Attribution weights, either pushed directly (settlePush) or via a Merkle
///         root per (model, epoch) that recipients claim against (postRoot + claim).
/// @dev The attributor (its own key, never the admin; governance may replace it) decides who
///      is paid; the contract bounds how much and how often. Epochs are counted by the
///      contract's clock (`currentEpoch()`, `epochLength` seconds each). Each (model, epoch)
///      is settled at most once, in one mode, in increasing epoch order, and no settlement
///      pays more than the model accrued in that epoch and earlier epochs and has not yet
///      paid (`settleable`). A settlement reserves its total; a push settlement may pay its
///      reservation in several parts, a Merkle one through claims. What a settlement leaves
///      unpaid after `claimWindow` (an unclaimed leaf, a root whose total exceeds its leaves,
///      an unfinished push) anyone may return to the model's pool (reclaimExpired). Leaves
///      commit to the (model, epoch) they pay, so one root cannot pay twice across models.
///      Invariant: totalPooled() + totalReserved() <= token.balanceOf(address(this)) (equal
///      absent direct token donations).
contract AttributionRewards {
    uint8 public constant MODE_NONE = 0;
    uint8 public constant MODE_PUSH = 1;
    uint8 public constant MODE_MERKLE = 2;
    uint64 public constant MIN_EPOCH_LENGTH = 60;
    uint64 public constant MAX_EPOCH_LENGTH = 30 days;
    uint64 public constant MIN_CLAIM_WINDOW = 1 days;
    uint64 public constant MAX_CLAIM_WINDOW = 365 days;

    /// @dev One (model, epoch) settlement.
    struct Settlement {
        uint8 mode;
        bool closed; // fully paid, or reclaimed
        uint64 deadline; // end of the claim window
        uint256 reserved; // reserved and not yet paid
        bytes32 root;
    }

    IOpenToken public immutable token;
    address public immutable admin;
    address public governance;
    address public market;
    address public attributor;

    uint64 public epochLength;
    uint64 public claimWindow;
    uint64 public anchorEpoch;
    uint64 public anchorTime;

    uint256 public totalPooled;
    uint256 public totalReserved;

    /// @dev Per model: unpaid funds of epochs before `pendingEpochOf`, and of that epoch.
    mapping(uint256 => uint256) public maturedOf;
    mapping(uint256 => uint256) public pendingOf;
    mapping(uint256 => uint64) public pendingEpochOf;
    mapping(uint256 => uint64) public lastSettledEpoch;
    mapping(uint256 => mapping(uint64 => Settlement)) public settlements;
    mapping(uint256 => mapping(uint64 => mapping(address => bool))) public isClaimed;

    event GovernanceInitialized(address indexed governance);
    event MarketInitialized(address indexed market);
    event AttributorChanged(address indexed oldAttributor, address indexed newAttributor);
    event Funded(uint256 indexed modelId, uint256 amount, uint256 pool);
    event RewardPaid(uint256 indexed modelId, uint64 indexed epoch, address indexed recipient, uint256 amount);
    event Settled(uint256 indexed modelId, uint64 indexed epoch, uint256 total, uint8 mode);
    event RootPosted(uint256 indexed modelId, uint64 indexed epoch, bytes32 root, uint256 total);
    event Claimed(uint256 indexed modelId, uint64 indexed epoch, address indexed account, uint256 amount);
    event Reclaimed(uint256 indexed modelId, uint64 indexed epoch, uint256 amount);

    error NotAdmin(address caller);
    error NotGovernance(address caller);
    error NotMarket(address caller);
    error NotAttributor(address caller);
    error AttributorIsAdmin();
    error GovernanceAlreadySet();
    error MarketAlreadySet();
    error ZeroAddress();
    error ZeroTotal();
    error LengthMismatch(uint256 recipients, uint256 amounts);
    error EpochNotReached(uint64 epoch, uint64 currentEpoch);
    error EpochAlreadySettled(uint256 modelId, uint64 epoch, uint64 lastSettledEpoch);
    error InsufficientPool(uint256 modelId, uint256 available, uint256 needed);
    error ZeroRoot();
    error NoRoot(uint256 modelId, uint64 epoch);
    error ClaimWindowOver(uint256 modelId, uint64 epoch, uint64 deadline);
    error ClaimWindowOpen(uint256 modelId, uint64 epoch, uint64 deadline);
    error NothingToReclaim(uint256 modelId, uint64 epoch);
    error DoubleClaim(uint256 modelId, uint64 epoch, address account);
    error InvalidProof(uint256 modelId, uint64 epoch, address account, uint256 amount);
    error InsufficientReserved(uint256 modelId, uint64 epoch, uint256 available, uint256 needed);
    error TransferFailed();

    modifier onlyAttributor() {
        if (msg.sender != attributor) revert NotAttributor(msg.sender);
        _;
    }

    modifier onlyGovernance() {
        if (msg.sender != governance || governance == address(0)) revert NotGovernance(msg.sender);
        _;
    }

    /// @param attributor_ the key that settles rewards (not the admin)
    /// @param epochLength_ seconds per settlement epoch (60 s..30 days)
    /// @param claimWindow_ seconds a settlement's reservation stays payable (1..365 days)
    constructor(IOpenToken token_, address admin_, address attributor_, uint64 epochLength_, uint64 claimWindow_) {
        if (address(token_) == address(0) || admin_ == address(0) || attributor_ == address(0)) revert ZeroAddress();
        if (attributor_ == admin_) revert AttributorIsAdmin();
        token = token_;
        admin = admin_;
        attributor = attributor_;
        emit AttributorChanged(address(0), attributor_);
        anchorEpoch = 1;
        anchorTime = uint64(block.timestamp);
        _setEpochLength(epochLength_);
        _setClaimWindow(claimWindow_);
    }

    /// @notice One-time wiring by the admin: sets the governance contract.
    function initGovernance(address governance_) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (governance != address(0)) revert GovernanceAlreadySet();
        if (governance_ == address(0)) revert ZeroAddress();
        governance = governance_;
        emit GovernanceInitialized(governance_);
    }

    /// @notice One-time wiring by the admin: sets the InferenceMarket allowed to fund pools.
    function initMarket(address market_) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (market != address(0)) revert MarketAlreadySet();
        if (market_ == address(0)) revert ZeroAddress();
        market = market_;
        emit MarketInitialized(market_);
    }

    /// @notice Governance: sets the attributor role that settles rewards (not the admin).
    function setAttributor(address a) external onlyGovernance {
        if (a == address(0)) revert ZeroAddress();
        if (a == admin) revert AttributorIsAdmin();
        emit AttributorChanged(attributor, a);
        attributor = a;
    }

    /// @notice Governance: seconds per epoch (60 s..30 days), counted from now; the current
    ///         epoch keeps its number.
    function setEpochLength(uint64 v) external onlyGovernance {
        _setEpochLength(v);
    }

    /// @notice Governance: seconds a new settlement stays payable (1..365 days).
    function setClaimWindow(uint64 v) external onlyGovernance {
        _setClaimWindow(v);
    }

    /// @notice The settlement epoch now (from 1).
    function currentEpoch() public view returns (uint64) {
        return anchorEpoch + (uint64(block.timestamp) - anchorTime) / epochLength;
    }

    /// @notice Unpaid funds of a model, all epochs.
    function poolOf(uint256 modelId) external view returns (uint256) {
        return maturedOf[modelId] + pendingOf[modelId];
    }

    /// @notice The most a settlement of (model, epoch) may pay: what the model accrued in that
    ///         epoch and before and has not paid or reserved.
    function settleable(uint256 modelId, uint64 epoch) public view returns (uint256) {
        uint256 pending = pendingEpochOf[modelId] <= epoch ? pendingOf[modelId] : 0;
        return maturedOf[modelId] + pending;
    }

    /// @notice Merkle root posted for (model, epoch), zero if none.
    function rootOf(uint256 modelId, uint64 epoch) external view returns (bytes32) {
        return settlements[modelId][epoch].root;
    }

    /// @notice Reserved and not yet paid for (model, epoch).
    function reservedOf(uint256 modelId, uint64 epoch) external view returns (uint256) {
        return settlements[modelId][epoch].reserved;
    }

    /// @notice Market only: credits `amount` (already transferred in) to the model's pool for
    ///         the current epoch.
    function fund(uint256 modelId, uint256 amount) external {
        if (msg.sender != market) revert NotMarket(msg.sender);
        uint64 epoch = currentEpoch();
        if (epoch > pendingEpochOf[modelId]) {
            maturedOf[modelId] += pendingOf[modelId];
            pendingOf[modelId] = 0;
            pendingEpochOf[modelId] = epoch;
        }
        pendingOf[modelId] += amount;
        totalPooled += amount;
        emit Funded(modelId, amount, maturedOf[modelId] + pendingOf[modelId]);
    }

    /// @notice Attributor pays `amounts` to `recipients` for (model, epoch). The first call for
    ///         an epoch opens its settlement and reserves `total` (at most `settleable`); later
    ///         calls for the same epoch pay further parts of that reservation (their `total` is
    ///         ignored) until it is used up, when the epoch is closed.
    function settlePush(
        uint256 modelId,
        uint64 epoch,
        uint256 total,
        address[] calldata recipients,
        uint256[] calldata amounts
    ) external onlyAttributor {
        if (recipients.length != amounts.length) revert LengthMismatch(recipients.length, amounts.length);
        Settlement storage s = settlements[modelId][epoch];
        if (s.mode == MODE_NONE) _open(modelId, epoch, total, MODE_PUSH);
        else if (s.mode != MODE_PUSH || s.closed) revert EpochAlreadySettled(modelId, epoch, lastSettledEpoch[modelId]);
        else if (block.timestamp > s.deadline) revert ClaimWindowOver(modelId, epoch, s.deadline);
        uint256 sum;
        for (uint256 i = 0; i < amounts.length; i++) sum += amounts[i];
        _pay(modelId, epoch, s, sum);
        for (uint256 i = 0; i < recipients.length; i++) {
            if (amounts[i] == 0) continue;
            if (!token.transfer(recipients[i], amounts[i])) revert TransferFailed();
            emit RewardPaid(modelId, epoch, recipients[i], amounts[i]);
        }
    }

    /// @notice Attributor posts the Merkle root for (model, epoch), reserving `total` (at most
    ///         `settleable`). Leaves are keccak256(bytes.concat(keccak256(abi.encode(modelId,
    ///         epoch, account, amount)))), pairs hashed sorted.
    function postRoot(uint256 modelId, uint64 epoch, bytes32 root, uint256 total) external onlyAttributor {
        if (root == bytes32(0)) revert ZeroRoot();
        if (settlements[modelId][epoch].mode != MODE_NONE) {
            revert EpochAlreadySettled(modelId, epoch, lastSettledEpoch[modelId]);
        }
        _open(modelId, epoch, total, MODE_MERKLE);
        settlements[modelId][epoch].root = root;
        emit RootPosted(modelId, epoch, root, total);
    }

    /// @notice Claims `amount` for `account` (anyone may submit) with a Merkle proof, within
    ///         the claim window.
    function claim(uint256 modelId, uint64 epoch, address account, uint256 amount, bytes32[] calldata proof)
        external
    {
        Settlement storage s = settlements[modelId][epoch];
        if (s.mode != MODE_MERKLE) revert NoRoot(modelId, epoch);
        if (block.timestamp > s.deadline) revert ClaimWindowOver(modelId, epoch, s.deadline);
        if (isClaimed[modelId][epoch][account]) revert DoubleClaim(modelId, epoch, account);
        bytes32 node = keccak256(bytes.concat(keccak256(abi.encode(modelId, epoch, account, amount))));
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 p = proof[i];
            node = node < p ? keccak256(abi.encodePacked(node, p)) : keccak256(abi.encodePacked(p, node));
        }
        if (node != s.root) revert InvalidProof(modelId, epoch, account, amount);
        isClaimed[modelId][epoch][account] = true;
        _pay(modelId, epoch, s, amount);
        if (amount > 0 && !token.transfer(account, amount)) revert TransferFailed();
        emit Claimed(modelId, epoch, account, amount);
    }

    /// @notice After the claim window, returns what a settlement left unpaid to the model's
    ///         pool (anyone may call), to be settled in a later epoch.
    function reclaimExpired(uint256 modelId, uint64 epoch) external {
        Settlement storage s = settlements[modelId][epoch];
        if (s.mode == MODE_NONE || s.reserved == 0) revert NothingToReclaim(modelId, epoch);
        if (block.timestamp <= s.deadline) revert ClaimWindowOpen(modelId, epoch, s.deadline);
        uint256 amount = s.reserved;
        s.reserved = 0;
        s.closed = true;
        totalReserved -= amount;
        maturedOf[modelId] += amount;
        totalPooled += amount;
        emit Reclaimed(modelId, epoch, amount);
    }

    function _open(uint256 modelId, uint64 epoch, uint256 total, uint8 mode) private {
        if (total == 0) revert ZeroTotal();
        uint64 now_ = currentEpoch();
        if (epoch == 0 || epoch > now_) revert EpochNotReached(epoch, now_);
        uint64 last = lastSettledEpoch[modelId];
        if (epoch <= last) revert EpochAlreadySettled(modelId, epoch, last);
        if (pendingEpochOf[modelId] <= epoch) {
            maturedOf[modelId] += pendingOf[modelId];
            pendingOf[modelId] = 0;
        }
        uint256 available = maturedOf[modelId];
        if (total > available) revert InsufficientPool(modelId, available, total);
        maturedOf[modelId] = available - total;
        totalPooled -= total;
        totalReserved += total;
        lastSettledEpoch[modelId] = epoch;
        Settlement storage s = settlements[modelId][epoch];
        s.mode = mode;
        s.deadline = uint64(block.timestamp) + claimWindow;
        s.reserved = total;
        emit Settled(modelId, epoch, total, mode);
    }

    function _pay(uint256 modelId, uint64 epoch, Settlement storage s, uint256 amount) private {
        uint256 reserved = s.reserved;
        if (amount > reserved) revert InsufficientReserved(modelId, epoch, reserved, amount);
        s.reserved = reserved - amount;
        totalReserved -= amount;
        if (s.reserved == 0) s.closed = true;
    }

    function _setEpochLength(uint64 v) private {
        checkChange("epochLength", epochLength, v, MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH);
        if (epochLength != 0) {
            anchorEpoch = currentEpoch();
            anchorTime = uint64(block.timestamp);
        }
        epochLength = v;
    }

    function _setClaimWindow(uint64 v) private {
        checkChange("claimWindow", claimWindow, v, MIN_CLAIM_WINDOW, MAX_CLAIM_WINDOW);
        claimWindow = v;
    }
}
