// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IOpenToken} from "./interfaces/IOpenToken.sol";

/// @notice The parts of ModelRegistry the market reads.
interface IModelRegistryView {
    /// @notice Owner of a model (reverts for unknown models).
    function ownerOf(uint256 modelId) external view returns (address);
    /// @notice Per-inference price of a model (reverts for unknown models).
    function priceOf(uint256 modelId) external view returns (uint256);
}

/// @notice The part of AttributionRewards the market calls.
interface IAttributionFund {
    /// @notice Credits tokens already transferred in to a model's pool.
    function fund(uint256 modelId, uint256 amount) external;
}

/// @notice The parts of StakingGovernance the market calls.
interface IStakingRewards {
    /// @notice Total tokens staked.
    function totalStaked() external view returns (uint256);
    /// @notice Distributes tokens already transferred in to stakers.
    function notifyReward(uint256 amount) external;
}

/// @title InferenceMarket
/// @notice Takes inference fees (price x count) and splits each payment exactly between the
///         model's data contributors (AttributionRewards pool), the model owner, OPEN stakers
///         (StakingGovernance) and the treasury, in basis points set by governance.
contract InferenceMarket {
    struct Batch {
        uint256 modelId;
        address payer;
        uint32 count;
        uint256 fee;
        uint64 paidAt;
    }

    uint16 public constant MAX_BPS = 10_000;

    IOpenToken public immutable token;
    IModelRegistryView public immutable modelRegistry;
    IAttributionFund public immutable attributionRewards;
    IStakingRewards public immutable stakingPool;
    address public immutable treasury;
    address public immutable admin;
    address public governance;

    uint16 public contributorsBps;
    uint16 public ownerBps;
    uint16 public stakersBps;
    uint16 public treasuryBps;

    uint256 public batchCount;
    mapping(uint256 => Batch) public batches;

    event GovernanceInitialized(address indexed governance);
    event FeeSplitChanged(uint16 contributorsBps, uint16 ownerBps, uint16 stakersBps, uint16 treasuryBps);
    event InferencePaid(
        uint256 indexed batchId,
        uint256 indexed modelId,
        address indexed payer,
        uint32 count,
        uint256 fee,
        uint256 toContributors,
        uint256 toOwner,
        uint256 toStakers,
        uint256 toTreasury
    );

    error NotAdmin(address caller);
    error NotGovernance(address caller);
    error GovernanceAlreadySet();
    error ZeroAddress();
    error InvalidFeeSplit(uint256 sumBps);
    error ZeroCount();
    error FeeExceedsMax(uint256 fee, uint256 maxFee);
    error TransferFailed();

    constructor(
        IOpenToken token_,
        IModelRegistryView modelRegistry_,
        IAttributionFund attributionRewards_,
        IStakingRewards stakingPool_,
        address treasury_,
        address admin_,
        uint16 contributorsBps_,
        uint16 ownerBps_,
        uint16 stakersBps_,
        uint16 treasuryBps_
    ) {
        if (
            address(token_) == address(0) || address(modelRegistry_) == address(0)
                || address(attributionRewards_) == address(0) || address(stakingPool_) == address(0)
                || treasury_ == address(0) || admin_ == address(0)
        ) revert ZeroAddress();
        token = token_;
        modelRegistry = modelRegistry_;
        attributionRewards = attributionRewards_;
        stakingPool = stakingPool_;
        treasury = treasury_;
        admin = admin_;
        _setFeeSplit(contributorsBps_, ownerBps_, stakersBps_, treasuryBps_);
    }

    /// @notice One-time wiring by the admin: sets the governance contract.
    function initGovernance(address governance_) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (governance != address(0)) revert GovernanceAlreadySet();
        if (governance_ == address(0)) revert ZeroAddress();
        governance = governance_;
        emit GovernanceInitialized(governance_);
    }

    /// @notice Governance: sets the fee split in bps; the four must sum to 10000.
    function setFeeSplit(uint16 contributorsBps_, uint16 ownerBps_, uint16 stakersBps_, uint16 treasuryBps_)
        external
    {
        if (msg.sender != governance || governance == address(0)) revert NotGovernance(msg.sender);
        _setFeeSplit(contributorsBps_, ownerBps_, stakersBps_, treasuryBps_);
    }

    /// @notice Current fee split in bps: (contributors, owner, stakers, treasury).
    function feeSplit() external view returns (uint16, uint16, uint16, uint16) {
        return (contributorsBps, ownerBps, stakersBps, treasuryBps);
    }

    /// @notice Pays for `count` inferences of `modelId` (needs prior approve of the fee).
    ///         The stakers' share goes to the treasury while nobody is staked.
    /// @param maxFee reverts with FeeExceedsMax if price x count is higher (price-change guard)
    /// @return batchId the new batch id (starting at 1)
    function payInference(uint256 modelId, uint32 count, uint256 maxFee) external returns (uint256 batchId) {
        if (count == 0) revert ZeroCount();
        uint256 fee = modelRegistry.priceOf(modelId) * count;
        if (fee > maxFee) revert FeeExceedsMax(fee, maxFee);
        address owner = modelRegistry.ownerOf(modelId);

        uint256 toContributors = (fee * contributorsBps) / MAX_BPS;
        uint256 toOwner = (fee * ownerBps) / MAX_BPS;
        uint256 toStakers = (fee * stakersBps) / MAX_BPS;
        uint256 toTreasury = fee - toContributors - toOwner - toStakers;
        if (toStakers > 0 && stakingPool.totalStaked() == 0) {
            toTreasury += toStakers;
            toStakers = 0;
        }

        batchId = ++batchCount;
        batches[batchId] = Batch({modelId: modelId, payer: msg.sender, count: count, fee: fee, paidAt: uint64(block.timestamp)});

        if (fee > 0 && !token.transferFrom(msg.sender, address(this), fee)) revert TransferFailed();
        if (toContributors > 0) {
            _send(address(attributionRewards), toContributors);
            attributionRewards.fund(modelId, toContributors);
        }
        if (toOwner > 0) _send(owner, toOwner);
        if (toStakers > 0) {
            _send(address(stakingPool), toStakers);
            stakingPool.notifyReward(toStakers);
        }
        if (toTreasury > 0) _send(treasury, toTreasury);

        emit InferencePaid(batchId, modelId, msg.sender, count, fee, toContributors, toOwner, toStakers, toTreasury);
    }

    function _send(address to, uint256 amount) private {
        if (!token.transfer(to, amount)) revert TransferFailed();
    }

    function _setFeeSplit(uint16 c, uint16 o, uint16 s, uint16 t) private {
        uint256 sum = uint256(c) + o + s + t;
        if (sum != MAX_BPS) revert InvalidFeeSplit(sum);
        contributorsBps = c;
        ownerBps = o;
        stakersBps = s;
        treasuryBps = t;
        emit FeeSplitChanged(c, o, s, t);
    }
}
