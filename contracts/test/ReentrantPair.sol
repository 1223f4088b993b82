// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IExecutor {
    function execute(uint256 amountIn, uint256[] calldata hops, uint256 minProfit, uint256 coinbaseBps, bool flash)
        external returns (uint256);
    function uniswapV2Call(address sender, uint256 a0, uint256 a1, bytes calldata data) external;
    function withdraw(address token, uint256 amount) external;
}

/// Test-only hostile "pair": when the executor calls swap() it tries to re-enter the executor.
/// mode 1: call uniswapV2Call a second time; mode 2: re-enter execute; mode 3: re-enter withdraw;
/// mode 4: call uniswapV2Call directly while the executor is idle (see poke()).
contract ReentrantPair {
    address public token0;
    address public token1;
    uint8 public mode;
    IExecutor public target;

    constructor(address t0, address t1) {
        token0 = t0;
        token1 = t1;
    }

    function arm(IExecutor t, uint8 m) external {
        target = t;
        mode = m;
    }

    function getReserves() external pure returns (uint112, uint112, uint32) {
        return (1e24, 1e24, 0);
    }

    function swap(uint256, uint256, address, bytes calldata data) external {
        if (mode == 1) {
            target.uniswapV2Call(address(target), 0, 0, data);
            target.uniswapV2Call(address(target), 0, 0, data);
        } else if (mode == 2) {
            uint256[] memory hops = new uint256[](2);
            target.execute(1, hops, 0, 0, false);
        } else if (mode == 3) {
            target.withdraw(token0, 1);
        }
    }

    function poke(bytes calldata data) external {
        target.uniswapV2Call(address(target), 0, 0, data);
    }
}
