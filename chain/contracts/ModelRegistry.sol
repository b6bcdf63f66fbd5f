// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ModelRegistry
/// @notice On-chain registry of fine-tuned models (base model + adapter) with the Datanets
///         they were trained on, so attribution can be tracked; each has a per-inference price.
/// @dev Model ids start at 1. An adapter hash is a claim of its registrant: uniqueness is per
///      (owner, adapter hash), so a key that copies a hash seen in the mempool registers its
///      own model and takes nothing from the author's. It has no governed parameters yet but
///      follows the common admin/initGovernance pattern so it can be a governance target.
contract ModelRegistry {
    struct Model {
        address owner;
        bytes32 baseModel;
        bytes32 adapterHash;
        uint8 kind;
        uint256 price;
        uint64 registeredAt;
    }

    address public immutable admin;
    address public governance;
    uint256 public modelCount;

    mapping(uint256 => Model) public models;
    mapping(address => mapping(bytes32 => uint256)) public modelByAdapter;
    mapping(uint256 => uint256[]) private _datanets;

    event AdminSet(address indexed admin);
    event GovernanceInitialized(address indexed governance);
    event ModelRegistered(
        uint256 indexed modelId,
        address indexed owner,
        bytes32 baseModel,
        bytes32 adapterHash,
        uint8 kind,
        uint256 price,
        uint256[] datanetIds
    );
    event PriceChanged(uint256 indexed modelId, uint256 oldPrice, uint256 newPrice);

    error NotAdmin(address caller);
    error GovernanceAlreadySet();
    error ZeroAddress();
    error DuplicateAdapter(bytes32 adapterHash, uint256 existingModelId);
    error UnknownModel(uint256 modelId);
    error NotModelOwner(uint256 modelId, address caller);

    constructor(address admin_) {
        if (admin_ == address(0)) revert ZeroAddress();
        admin = admin_;
        emit AdminSet(admin_);
    }

    /// @notice One-time wiring by the admin: sets the governance contract.
    function initGovernance(address governance_) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (governance != address(0)) revert GovernanceAlreadySet();
        if (governance_ == address(0)) revert ZeroAddress();
        governance = governance_;
        emit GovernanceInitialized(governance_);
    }

    /// @notice Registers a model owned by the caller.
    /// @param baseModel identifier hash of the base model
    /// @param adapterHash content hash of the adapter weights (unique per owner)
    /// @param datanetIds Datanets the model was trained on
    /// @param kind model kind (simulator-defined, e.g. 0 = LoRA adapter, 1 = small model)
    /// @param pricePerInference fee per inference in token wei
    /// @return modelId the new model id (starting at 1)
    function registerModel(
        bytes32 baseModel,
        bytes32 adapterHash,
        uint256[] calldata datanetIds,
        uint8 kind,
        uint256 pricePerInference
    ) external returns (uint256 modelId) {
        uint256 existing = modelByAdapter[msg.sender][adapterHash];
        if (existing != 0) revert DuplicateAdapter(adapterHash, existing);
        modelId = ++modelCount;
        models[modelId] = Model({
            owner: msg.sender,
            baseModel: baseModel,
            adapterHash: adapterHash,
            kind: kind,
            price: pricePerInference,
            registeredAt: uint64(block.timestamp)
        });
        modelByAdapter[msg.sender][adapterHash] = modelId;
        _datanets[modelId] = datanetIds;
        emit ModelRegistered(modelId, msg.sender, baseModel, adapterHash, kind, pricePerInference, datanetIds);
    }

    /// @notice Model owner changes the per-inference price.
    function setPrice(uint256 modelId, uint256 price) external {
        Model storage m = _get(modelId);
        if (m.owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
        emit PriceChanged(modelId, m.price, price);
        m.price = price;
    }

    /// @notice Datanets the model was trained on.
    function datanetsOf(uint256 modelId) external view returns (uint256[] memory) {
        _get(modelId);
        return _datanets[modelId];
    }

    /// @notice Owner of a model (reverts UnknownModel if it does not exist).
    function ownerOf(uint256 modelId) external view returns (address) {
        return _get(modelId).owner;
    }

    /// @notice Per-inference price of a model (reverts UnknownModel if it does not exist).
    function priceOf(uint256 modelId) external view returns (uint256) {
        return _get(modelId).price;
    }

    function _get(uint256 modelId) private view returns (Model storage m) {
        m = models[modelId];
        if (m.owner == address(0)) revert UnknownModel(modelId);
    }
}
