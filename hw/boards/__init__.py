"""Board builds of the appliance (ECP5 via yowasp, Zynq via Vivado Tcl) and the UART host link."""
