# plot.gp - the chart of a `make bench` run (bench/run.py writes its inputs)
#
#   gnuplot -e "varsfile='chart.gp'" bench/plot.gp
#
# varsfile sets: datafile, outfile, npanels, and for each panel i (from 0)
# title<i> and log<i> (1: logarithmic y axis).  datafile holds one block per
# panel, blocks separated by two blank lines, one bar per line:
#   "label" value color    (color: 0xRRGGBB, by system)
# Values are in thousands (run.py divides).  Failed points come with value 0
# and "FAILED" in their label.

load varsfile

set terminal pngcairo noenhanced size 1500,1000 font "sans,9"
set output outfile

cols = (npanels > 4) ? 3 : 2
rows = ceil(npanels / (cols * 1.0))
set multiplot layout rows, cols title "shmkv beside memcached and Redis (make bench)"

set style fill solid 0.75 border -1
set boxwidth 0.7
set grid ytics
set xtics rotate by 30 right nomirror
set ytics nomirror
set format y "%g"
set key off
set bmargin 8
set offsets 0.5, 0.5, 0, 0

do for [i = 0:npanels - 1] {
    set title value(sprintf("title%d", i))
    if (value(sprintf("log%d", i))) {
        set logscale y 10
        set yrange [1:*]
    } else {
        unset logscale y
        set yrange [0:*]
    }
    plot datafile index i using 0:2:3:xtic(1) with boxes lc rgb variable, \
         '' index i using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.6 font "sans,8"
}

unset multiplot
