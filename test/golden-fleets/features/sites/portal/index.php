<?php echo "portal";
