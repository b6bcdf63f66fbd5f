// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title OpenToken (OPEN)
/// @notice Fixed-supply ERC-20: 1,000,000,000 OPEN (18 decimals) minted once to a genesis
///         holder in the constructor. There is no mint or burn function.
contract OpenToken {
    string public constant name = "OpenLedger";
    string public constant symbol = "OPEN";
    uint8 public constant decimals = 18;
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000e18;

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    /// @notice Emitted on every balance movement (including the genesis mint from address(0)).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice Emitted when an allowance is set by approve.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice The sender's balance is smaller than the amount moved.
    error InsufficientBalance(address account, uint256 available, uint256 needed);
    /// @notice The spender's allowance is smaller than the amount moved.
    error InsufficientAllowance(address owner, address spender, uint256 available, uint256 needed);
    /// @notice Transfers to address(0) are rejected (there is no burn).
    error InvalidRecipient(address to);
    /// @notice The genesis holder may not be address(0).
    error InvalidGenesisHolder();

    /// @param genesisHolder receives the entire fixed supply
    constructor(address genesisHolder) {
        if (genesisHolder == address(0)) revert InvalidGenesisHolder();
        totalSupply = TOTAL_SUPPLY;
        balanceOf[genesisHolder] = TOTAL_SUPPLY;
        emit Transfer(address(0), genesisHolder, TOTAL_SUPPLY);
    }

    /// @notice Moves `amount` token wei from the caller to `to`.
    /// @return true on success (reverts otherwise)
    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    /// @notice Sets the caller's allowance for `spender` to `amount` (max uint256 = infinite).
    /// @return true on success
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Moves `amount` from `from` to `to` using the caller's allowance. An infinite
    ///         allowance (max uint256) is not decremented.
    /// @return true on success
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(from, msg.sender, allowed, amount);
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _transfer(from, to, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) private {
        if (to == address(0)) revert InvalidRecipient(to);
        uint256 bal = balanceOf[from];
        if (bal < amount) revert InsufficientBalance(from, bal, amount);
        unchecked {
            balanceOf[from] = bal - amount;
            balanceOf[to] += amount; // cannot overflow: sum of balances == TOTAL_SUPPLY
        }
        emit Transfer(from, to, amount);
    }
}
