// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOpenToken} from "./interfaces/IOpenToken.sol";

/// @title AttributionRewards
/// @notice Holds the contributors' share of inference fees per model and pays it out by
///         Proof-of-Attribution weights, either pushed directly (settlePush) or via a Merkle
///         root per (model, epoch) that recipients claim against (postRoot + claim).
/// @dev Invariant: totalPooled() + totalReserved() == token.balanceOf(address(this))
///      (absent direct token donations).
contract AttributionRewards {
    uint8 public constant MODE_PUSH = 0;
    uint8 public constant MODE_MERKLE = 1;

    IOpenToken public immutable token;
    address public immutable admin;
    address public governance;
    address public market;
    address public attributor;

    uint256 public totalPooled;
    uint256 public totalReserved;

    mapping(uint256 => uint256) public poolOf;
    mapping(uint256 => mapping(uint64 => uint256)) public reservedOf;
    mapping(uint256 => mapping(uint64 => bytes32)) public rootOf;
    mapping(uint256 => mapping(uint64 => mapping(address => bool))) public isClaimed;

    event GovernanceInitialized(address indexed governance);
    event MarketInitialized(address indexed market);
    event AttributorChanged(address indexed oldAttributor, address indexed newAttributor);
    event Funded(uint256 indexed modelId, uint256 amount, uint256 pool);
    event RewardPaid(uint256 indexed modelId, uint64 indexed epoch, address indexed recipient, uint256 amount);
    event Settled(uint256 indexed modelId, uint64 indexed epoch, uint256 total, uint8 mode);
    event RootPosted(uint256 indexed modelId, uint64 indexed epoch, bytes32 root, uint256 total);
    event Claimed(uint256 indexed modelId, uint64 indexed epoch, address indexed account, uint256 amount);

    error NotAdmin(address caller);
    error NotGovernance(address caller);
    error NotMarket(address caller);
    error NotAttributor(address caller);
    error GovernanceAlreadySet();
    error MarketAlreadySet();
    error ZeroAddress();
    error LengthMismatch(uint256 recipients, uint256 amounts);
    error InsufficientPool(uint256 modelId, uint256 available, uint256 needed);
    error RootAlreadyPosted(uint256 modelId, uint64 epoch);
    error ZeroRoot();
    error NoRoot(uint256 modelId, uint64 epoch);
    error DoubleClaim(uint256 modelId, uint64 epoch, address account);
    error InvalidProof(uint256 modelId, uint64 epoch, address account, uint256 amount);
    error InsufficientReserved(uint256 modelId, uint64 epoch, uint256 available, uint256 needed);
    error TransferFailed();

    modifier onlyAttributor() {
        if (msg.sender != attributor) revert NotAttributor(msg.sender);
        _;
    }

    constructor(IOpenToken token_, address admin_) {
        if (address(token_) == address(0) || admin_ == address(0)) revert ZeroAddress();
        token = token_;
        admin = admin_;
        attributor = admin_;
        emit AttributorChanged(address(0), admin_);
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

    /// @notice Governance: sets the attributor role that settles rewards.
    function setAttributor(address a) external {
        if (msg.sender != governance || governance == address(0)) revert NotGovernance(msg.sender);
        if (a == address(0)) revert ZeroAddress();
        emit AttributorChanged(attributor, a);
        attributor = a;
    }

    /// @notice Market only: credits `amount` (already transferred in) to the model's pool.
    function fund(uint256 modelId, uint256 amount) external {
        if (msg.sender != market) revert NotMarket(msg.sender);
        poolOf[modelId] += amount;
        totalPooled += amount;
        emit Funded(modelId, amount, poolOf[modelId]);
    }

    /// @notice Attributor pays `amounts` from the model's pool directly to `recipients`.
    function settlePush(uint256 modelId, uint64 epoch, address[] calldata recipients, uint256[] calldata amounts)
        external
        onlyAttributor
    {
        if (recipients.length != amounts.length) revert LengthMismatch(recipients.length, amounts.length);
        uint256 total;
        for (uint256 i = 0; i < amounts.length; i++) total += amounts[i];
        uint256 pool = poolOf[modelId];
        if (total > pool) revert InsufficientPool(modelId, pool, total);
        poolOf[modelId] = pool - total;
        totalPooled -= total;
        for (uint256 i = 0; i < recipients.length; i++) {
            if (amounts[i] == 0) continue;
            if (!token.transfer(recipients[i], amounts[i])) revert TransferFailed();
            emit RewardPaid(modelId, epoch, recipients[i], amounts[i]);
        }
        emit Settled(modelId, epoch, total, MODE_PUSH);
    }

    /// @notice Attributor posts the Merkle root for (model, epoch), reserving `total` from the pool.
    ///         Leaves are keccak256(bytes.concat(keccak256(abi.encode(account, amount)))), pairs
    ///         hashed sorted.
    function postRoot(uint256 modelId, uint64 epoch, bytes32 root, uint256 total) external onlyAttributor {
        if (root == bytes32(0)) revert ZeroRoot();
        if (rootOf[modelId][epoch] != bytes32(0)) revert RootAlreadyPosted(modelId, epoch);
        uint256 pool = poolOf[modelId];
        if (total > pool) revert InsufficientPool(modelId, pool, total);
        poolOf[modelId] = pool - total;
        totalPooled -= total;
        reservedOf[modelId][epoch] = total;
        totalReserved += total;
        rootOf[modelId][epoch] = root;
        emit RootPosted(modelId, epoch, root, total);
        emit Settled(modelId, epoch, total, MODE_MERKLE);
    }

    /// @notice Claims `amount` for `account` (anyone may submit) with a Merkle proof.
    function claim(uint256 modelId, uint64 epoch, address account, uint256 amount, bytes32[] calldata proof)
        external
    {
        bytes32 root = rootOf[modelId][epoch];
        if (root == bytes32(0)) revert NoRoot(modelId, epoch);
        if (isClaimed[modelId][epoch][account]) revert DoubleClaim(modelId, epoch, account);
        bytes32 node = keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 p = proof[i];
            node = node < p ? keccak256(abi.encodePacked(node, p)) : keccak256(abi.encodePacked(p, node));
        }
        if (node != root) revert InvalidProof(modelId, epoch, account, amount);
        uint256 reserved = reservedOf[modelId][epoch];
        if (amount > reserved) revert InsufficientReserved(modelId, epoch, reserved, amount);
        isClaimed[modelId][epoch][account] = true;
        reservedOf[modelId][epoch] = reserved - amount;
        totalReserved -= amount;
        if (amount > 0 && !token.transfer(account, amount)) revert TransferFailed();
        emit Claimed(modelId, epoch, account, amount);
    }
}
