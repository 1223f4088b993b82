// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Minimal interfaces of what the executor touches.
interface IERC20Min {
    function transfer(address to, uint256 amount) external returns (bool);
    function balanceOf(address who) external view returns (uint256);
}

interface IWETHMin is IERC20Min {
    function withdraw(uint256 amount) external;
}

interface IUniswapV2PairMin {
    function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
    function token0() external view returns (address);
    function token1() external view returns (address);
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

/// @title mevblade arbitrage executor
/// @notice Runs one cyclic arbitrage over Uniswap V2-style pairs (2 pools or N hops), funded either by a
///         flash swap on the first pair (no capital) or by the contract's own balance of the start token.
///         Reverts unless the profit, in the start token, is at least `minProfit`. Optionally pays a share
///         of the profit (start token must be WETH) to block.coinbase. Only the owner can run it or withdraw.
/// @dev A hop is packed in one word: bits 0..159 pair, bit 160 zeroForOne, bits 168..199 fee numerator,
///      bits 200..231 fee denominator (997/1000 for Uniswap V2). Amounts are computed on-chain from the
///      reserves at execution time with the V2 formula, so a stale view can only lower profit (then revert).
contract MevbladeExecutor {
    address public immutable owner;
    address public immutable weth;

    uint256 private _lock = 1;          // 1 = idle, 2 = inside execute/withdraw
    address private _expectedPair;      // the one pair allowed to call uniswapV2Call, once

    error NotOwner();
    error Reentrant();
    error UnexpectedCallback();
    error BadPath();
    error Unprofitable(uint256 profit, uint256 minProfit);
    error PaymentFailed();

    event Arbitrage(address indexed startToken, uint256 amountIn, uint256 profit, uint256 coinbasePaid);

    constructor(address weth_) {
        owner = msg.sender;
        weth = weth_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    modifier nonReentrant() {
        if (_lock != 1) revert Reentrant();
        _lock = 2;
        _;
        _lock = 1;
    }

    function _pair(uint256 hop) private pure returns (address) {
        return address(uint160(hop));
    }

    function _zeroForOne(uint256 hop) private pure returns (bool) {
        return (hop >> 160) & 1 == 1;
    }

    /// Output amounts of every hop for `amountIn`, from current reserves.
    function quote(uint256 amountIn, uint256[] calldata hops) public view returns (uint256[] memory amounts) {
        uint256 n = hops.length;
        amounts = new uint256[](n + 1);
        amounts[0] = amountIn;
        for (uint256 i = 0; i < n; i++) {
            uint256 hop = hops[i];
            (uint112 r0, uint112 r1, ) = IUniswapV2PairMin(_pair(hop)).getReserves();
            (uint256 rin, uint256 rout) = _zeroForOne(hop) ? (uint256(r0), uint256(r1)) : (uint256(r1), uint256(r0));
            uint256 feeNum = (hop >> 168) & 0xffffffff;
            uint256 feeDen = (hop >> 200) & 0xffffffff;
            uint256 inWithFee = amounts[i] * feeNum;
            amounts[i + 1] = (inWithFee * rout) / (rin * feeDen + inWithFee);
        }
    }

    function _startToken(uint256 hop) private view returns (address) {
        IUniswapV2PairMin p = IUniswapV2PairMin(_pair(hop));
        return _zeroForOne(hop) ? p.token0() : p.token1();
    }

    function _swapHop(uint256 hop, uint256 amountOut, address to, bytes memory data) private {
        (uint256 a0, uint256 a1) = _zeroForOne(hop) ? (uint256(0), amountOut) : (amountOut, uint256(0));
        IUniswapV2PairMin(_pair(hop)).swap(a0, a1, to, data);
    }

    /// Swap hops `from`.. in a chain: each pair sends its output straight to the next pair, the last to us.
    function _runHops(uint256[] memory hops, uint256[] memory amounts, uint256 from) private {
        uint256 n = hops.length;
        for (uint256 i = from; i < n; i++) {
            address to = i + 1 < n ? _pair(hops[i + 1]) : address(this);
            _swapHop(hops[i], amounts[i + 1], to, "");
        }
    }

    /// Run the arbitrage. `coinbaseBps` of the profit (in 1/10000) goes to block.coinbase as ETH.
    function execute(uint256 amountIn, uint256[] calldata hops, uint256 minProfit, uint256 coinbaseBps, bool flash)
        external
        onlyOwner
        nonReentrant
        returns (uint256 profit)
    {
        uint256 n = hops.length;
        if (n < 2 || amountIn == 0 || coinbaseBps > 10000) revert BadPath();
        address start = _startToken(hops[0]);
        if (coinbaseBps > 0 && start != weth) revert BadPath();
        uint256[] memory amounts = quote(amountIn, hops);
        uint256 before = IERC20Min(start).balanceOf(address(this));
        if (flash) {
            _flash(start, amounts, _copy(hops));
        } else {
            if (!IERC20Min(start).transfer(_pair(hops[0]), amountIn)) revert PaymentFailed();
            _runHops(_copy(hops), amounts, 0);
        }
        profit = _settle(start, before, minProfit, coinbaseBps);
        emit Arbitrage(start, amountIn, profit, (profit * coinbaseBps) / 10000);
    }

    function _flash(address start, uint256[] memory amounts, uint256[] memory hops) private {
        _expectedPair = _pair(hops[0]);
        // V2 calls back the recipient, so the borrowed tokens come to us and we forward them to hop 1
        _swapHop(hops[0], amounts[1], address(this), abi.encode(start, amounts, hops));
        if (_expectedPair != address(0)) revert UnexpectedCallback(); // the pair never called back
    }

    function _settle(address start, uint256 before, uint256 minProfit, uint256 coinbaseBps)
        private
        returns (uint256 profit)
    {
        uint256 afterBal = IERC20Min(start).balanceOf(address(this));
        profit = afterBal > before ? afterBal - before : 0;
        if (afterBal < before || profit < minProfit) revert Unprofitable(profit, minProfit);
        uint256 paid = (profit * coinbaseBps) / 10000;
        if (paid > 0) {
            IWETHMin(weth).withdraw(paid);
            (bool ok, ) = block.coinbase.call{value: paid}("");
            if (!ok) revert PaymentFailed();
        }
    }

    function _copy(uint256[] calldata xs) private pure returns (uint256[] memory ys) {
        ys = new uint256[](xs.length);
        for (uint256 i = 0; i < xs.length; i++) ys[i] = xs[i];
    }

    /// Flash-swap callback of the first pair: run the remaining hops, then repay the first pair.
    function uniswapV2Call(address sender, uint256, uint256, bytes calldata data) external {
        if (msg.sender != _expectedPair || sender != address(this) || _lock != 2) revert UnexpectedCallback();
        _expectedPair = address(0); // one callback per execute
        (address start, uint256[] memory amounts, uint256[] memory hops) =
            abi.decode(data, (address, uint256[], uint256[]));
        IUniswapV2PairMin first = IUniswapV2PairMin(_pair(hops[0]));
        address mid = _zeroForOne(hops[0]) ? first.token1() : first.token0();
        if (!IERC20Min(mid).transfer(_pair(hops[1]), amounts[1])) revert PaymentFailed();
        _runHops(hops, amounts, 1);
        if (!IERC20Min(start).transfer(_pair(hops[0]), amounts[0])) revert PaymentFailed();
    }

    /// Send `amount` of `token` (address(0) = ETH) to the owner.
    function withdraw(address token, uint256 amount) external onlyOwner nonReentrant {
        if (token == address(0)) {
            (bool ok, ) = owner.call{value: amount}("");
            if (!ok) revert PaymentFailed();
        } else if (!IERC20Min(token).transfer(owner, amount)) {
            revert PaymentFailed();
        }
    }

    /// Only WETH unwrapping may send ETH here.
    receive() external payable {
        if (msg.sender != weth) revert UnexpectedCallback();
    }
}
