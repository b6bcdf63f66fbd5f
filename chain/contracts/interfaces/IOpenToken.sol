// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IOpenToken
/// @notice Minimal ERC-20 surface of the OPEN token used by the protocol contracts.
interface IOpenToken {
    /// @notice Balance of `account` in token wei.
    function balanceOf(address account) external view returns (uint256);
    /// @notice Moves `amount` from the caller to `to`.
    function transfer(address to, uint256 amount) external returns (bool);
    /// @notice Moves `amount` from `from` to `to` using the caller's allowance.
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}
