# Dry run of a Vivado batch script under plain tclsh (no Vivado here): every command
# tclsh does not know is recorded and answers with a placeholder, so the script's own
# Tcl (syntax, variables, control flow, argument handling) is exercised end to end.
#
#   tclsh dryrun.tcl <script.tcl> <args...>      -> prints "CALL <command>" lines, "DRYRUN OK"

set script [lindex $argv 0]
set argv   [lrange $argv 1 end]
set argc   [llength $argv]
set ::calls 0

proc unknown {args} {
    incr ::calls
    set cmd [lindex $args 0]
    puts "CALL [string range [join $args { }] 0 160]"
    switch -- $cmd {
        get_board_parts { return {} }
        get_property    { return "100%" }
        default         { return "<$cmd>" }
    }
}
rename file _tcl_file
proc file {sub args} {
    if {$sub in {copy mkdir delete}} {
        incr ::calls
        puts "CALL file $sub $args"
        return
    }
    return [_tcl_file $sub {*}$args]
}
rename exit _tcl_exit
proc exit {{code 0}} { error "script called exit $code" }

if {[catch {source $script} err]} {
    puts stderr "DRYRUN FAILED: $err"
    puts stderr $::errorInfo
    _tcl_exit 1
}
puts "DRYRUN OK ($::calls tool commands)"
