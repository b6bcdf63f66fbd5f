// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A governed numeric parameter changed (constructors log their initial values as a
///         change from 0).
event ParameterChanged(bytes32 indexed name, uint256 oldValue, uint256 newValue);

/// @notice A governed parameter outside the bounds its contract allows.
error OutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);

/// @notice The one check behind every bounded setter: reverts with OutOfBounds unless
///         min <= value <= max, else logs the change from `oldValue`.
function checkChange(bytes32 name, uint256 oldValue, uint256 value, uint256 min, uint256 max) {
    if (value < min || value > max) revert OutOfBounds(name, value, min, max);
    emit ParameterChanged(name, oldValue, value);
}
