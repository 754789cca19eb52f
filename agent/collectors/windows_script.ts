/**
 * The PowerShell script the Windows collectors run (Windows PowerShell 5.1 and
 * PowerShell 7 alike), one process for all requested sections. It prints one JSON
 * object; a section that fails is left out. Sections: os, hardware, storage, software
 * (the uninstall registry keys, 64- and 32-bit, machine and per-user), services,
 * processes, sessions.
 *
 * @module
 */

/** Script text; `$Sections` is set by the caller's prefix line. */
export const WINDOWS_INVENTORY_SCRIPT = String.raw`
$ErrorActionPreference = 'SilentlyContinue'
$ProgressPreference = 'SilentlyContinue'
$out = @{}
function Want($name) { return $Sections -contains $name }

if (Want 'os') {
  $os = Get-CimInstance Win32_OperatingSystem
  $cs = Get-CimInstance Win32_ComputerSystem
  $out.os = @{
    caption = $os.Caption; version = $os.Version; build = $os.BuildNumber
    architecture = $os.OSArchitecture; last_boot = $os.LastBootUpTime.ToUniversalTime().ToString('o')
    domain = $cs.Domain; part_of_domain = $cs.PartOfDomain; product_type = $os.ProductType
    console_user = $cs.UserName
  }
}
if (Want 'hardware') {
  $cpu = @(Get-CimInstance Win32_Processor)
  $cs = Get-CimInstance Win32_ComputerSystem
  $bios = Get-CimInstance Win32_BIOS
  $out.hardware = @{
    cpu_model = ($cpu | Select-Object -First 1).Name
    sockets = $cpu.Count
    physical_cores = ($cpu | Measure-Object -Property NumberOfCores -Sum).Sum
    logical_cores = ($cpu | Measure-Object -Property NumberOfLogicalProcessors -Sum).Sum
    mhz = ($cpu | Select-Object -First 1).MaxClockSpeed
    load_percent = ($cpu | Measure-Object -Property LoadPercentage -Average).Average
    manufacturer = $cs.Manufacturer; model = $cs.Model; serial_number = $bios.SerialNumber
    memory = @(Get-CimInstance Win32_PhysicalMemory | ForEach-Object {
      @{ slot = $_.DeviceLocator; size_bytes = [int64]$_.Capacity; speed_mts = $_.Speed
         manufacturer = $_.Manufacturer; part_number = ("" + $_.PartNumber).Trim() }
    })
  }
}
if (Want 'storage') {
  $out.storage = @(Get-CimInstance Win32_LogicalDisk -Filter 'DriveType=3' | ForEach-Object {
    @{ device = $_.DeviceID; mountpoint = $_.DeviceID + '\'; fstype = $_.FileSystem
       total_bytes = [int64]$_.Size; free_bytes = [int64]$_.FreeSpace }
  })
}
if (Want 'software') {
  $keys = @(
    'HKLM:\Software\Microsoft\Windows\CurrentVersion\Uninstall\*',
    'HKLM:\Software\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\*'
  )
  $users = @(Get-ChildItem 'Registry::HKEY_USERS' | Where-Object { $_.Name -match 'S-1-5-21-[\d-]+$' })
  foreach ($u in $users) { $keys += ('Registry::' + $u.Name + '\Software\Microsoft\Windows\CurrentVersion\Uninstall\*') }
  $out.software = @(Get-ItemProperty -Path $keys |
    Where-Object { $_.DisplayName -and -not $_.SystemComponent -and -not $_.ParentKeyName } |
    ForEach-Object { @{ name = $_.DisplayName; version = ("" + $_.DisplayVersion); publisher = ("" + $_.Publisher) } })
}
if (Want 'services') {
  $out.services = @(Get-CimInstance Win32_Service | ForEach-Object {
    @{ name = $_.Name; display_name = $_.DisplayName; state = ("" + $_.State).ToLower(); start_mode = ("" + $_.StartMode).ToLower() }
  })
}
if (Want 'processes') {
  $owners = @{}
  $out.processes = @(Get-CimInstance Win32_Process | ForEach-Object {
    @{ pid = [int]$_.ProcessId; ppid = [int]$_.ParentProcessId; name = $_.Name
       rss_bytes = [int64]$_.WorkingSetSize
       cpu_seconds = [math]::Round(([double]$_.KernelModeTime + [double]$_.UserModeTime) / 1e7, 2) }
  })
}
if (Want 'sessions') {
  $sessions = @()
  $raw = & quser.exe 2>$null
  if ($raw) {
    foreach ($line in ($raw | Select-Object -Skip 1)) {
      $parts = ($line.Trim() -replace '^>', '') -split '\s{2,}'
      if ($parts.Count -ge 4) { $sessions += @{ user = $parts[0]; terminal = $parts[1]; since = $parts[-1] } }
    }
  }
  $out.sessions = $sessions
}
$out | ConvertTo-Json -Depth 5 -Compress
`;

/** The command line prefix that selects sections, then the script. */
export function windowsInventoryCommand(sections: string[]): string {
  const list = sections.map((s) => `'${s.replace(/[^a-z]/g, "")}'`).join(",");
  return `$Sections = @(${list})\n${WINDOWS_INVENTORY_SCRIPT}`;
}
